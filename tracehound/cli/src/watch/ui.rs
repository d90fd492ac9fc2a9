//! Drawing the dashboard from its model: one function per panel, no state of its own.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Gauge, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::state::{Dashboard, Link};
use crate::model::StatsView;
use crate::text;

/// Below this size the panels would be squeezed out of sight: a compact summary is
/// drawn instead.
const MIN_WIDTH: u16 = 80;
const MIN_HEIGHT: u16 = 34;

/// Draws the whole screen. Any terminal size is fine: small ones get a summary.
pub fn draw(frame: &mut Frame, dash: &Dashboard) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_compact(frame, area, dash);
        return;
    }
    let [header, throughput, middle, bottom, audit, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Min(8),
        Constraint::Length(4),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, dash);
    let empty = StatsView::default();
    let stats = dash.stats.as_ref().unwrap_or(&empty);
    let stale = if dash.connected() || dash.stats.is_none() {
        ""
    } else {
        " (stale)"
    };
    draw_throughput(frame, throughput, dash, stats, stale);
    let [results, quarantine] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(middle);
    draw_results(frame, results, stats, &dash.kind_rates, stale);
    draw_quarantine(frame, quarantine, stats, stale);
    let [sources, threats] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    draw_sources(frame, sources, stats, stale);
    draw_threats(frame, threats, stats, stale);
    draw_audit(frame, audit, stats, stale);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" q", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw("/"),
            Span::styled("Esc", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw("/"),
            Span::styled("Ctrl-C", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(" quit"),
        ])),
        keys,
    );
}

/// The essentials, one per line, for a small terminal.
fn draw_compact(frame: &mut Frame, area: Rect, dash: &Dashboard) {
    let link = match &dash.link {
        Link::Connecting => "connecting…".to_owned(),
        Link::Up => "● connected".to_owned(),
        Link::Down { error, .. } => format!("○ disconnected: {error}"),
    };
    let mut lines = vec![
        Line::raw(format!("tracehound watch {}", dash.target)),
        Line::raw(link),
    ];
    if let Some(s) = &dash.stats {
        lines.extend([
            Line::raw(format!("intercepts/s: {:.0}", dash.rate)),
            Line::raw(format!("total intercepts: {}", s.total_intercepts)),
            Line::raw(format!(
                "quarantined: {} (held {}, {})",
                s.quarantined,
                s.quarantine.count,
                s.quarantine.pressure_name()
            )),
            Line::raw(format!("audit chain: {} records", s.audit.length)),
            Line::raw(format!(
                "notifications dropped: {}",
                s.notifications_dropped
            )),
        ]);
    }
    lines.push(Line::raw(format!(
        "(full dashboard from {MIN_WIDTH}x{MIN_HEIGHT}; q quits)"
    )));
    frame.render_widget(Paragraph::new(lines), area);
}

fn panel(title: String) -> Block<'static> {
    Block::new().borders(Borders::ALL).title(Span::styled(
        title,
        Style::new().add_modifier(Modifier::BOLD),
    ))
}

fn draw_header(frame: &mut Frame, area: Rect, dash: &Dashboard) {
    let mut spans = vec![
        Span::styled(
            " tracehound watch ",
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ),
        Span::raw(format!(" {} ", dash.target)),
    ];
    match &dash.link {
        Link::Connecting => spans.push(Span::styled("connecting…", Style::new().fg(Color::Yellow))),
        Link::Up => {
            spans.push(Span::styled(
                "● connected",
                Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
            ));
            if let Some(s) = &dash.stats {
                spans.push(Span::raw(format!(
                    "  uptime {}  config generation {}",
                    text::duration_ms(s.uptime_ms),
                    s.config_generation
                )));
            }
        }
        Link::Down { error, attempts } => {
            spans.push(Span::styled(
                "○ disconnected",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(
                "  retrying every {:?} (attempt {attempts}): {error}",
                dash.interval
            )));
        }
    }
    spans.push(Span::raw(format!(
        "  polls {}  every {:?}",
        dash.polls, dash.interval
    )));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_throughput(frame: &mut Frame, area: Rect, dash: &Dashboard, s: &StatsView, stale: &str) {
    let block = panel(format!(" Throughput{stale} "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [numbers, spark] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(1)]).areas(inner);
    let lines = vec![
        Line::from(vec![
            Span::raw("intercepts/s: "),
            Span::styled(
                format!("{:.0}", dash.rate),
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ),
        ]),
        Line::raw(format!("peak/s: {:.0}", dash.peak_rate)),
        Line::raw(format!("total intercepts: {}", s.total_intercepts)),
        Line::raw(format!("reconnects: {}", dash.reconnects)),
    ];
    frame.render_widget(Paragraph::new(lines), numbers);
    // The newest samples, right-aligned to the panel's width.
    let width = usize::from(spark.width);
    let skip = dash.history.len().saturating_sub(width);
    let data: Vec<u64> = dash.history.iter().skip(skip).copied().collect();
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .style(Style::new().fg(Color::Cyan)),
        spark,
    );
}

fn draw_results(frame: &mut Frame, area: Rect, s: &StatsView, rates: &[f64], stale: &str) {
    let total = s.total_intercepts.max(1) as f64;
    let rows = s.results().into_iter().enumerate().map(|(i, (kind, n))| {
        let rate = rates.get(i).copied().unwrap_or(0.0);
        let share = n as f64 / total;
        let bar = "█".repeat((share * 12.0).round().clamp(0.0, 12.0) as usize);
        Row::new(vec![
            Cell::from(kind),
            Cell::from(n.to_string()),
            Cell::from(format!("{rate:.0}")),
            Cell::from(format!("{:5.1}%", share * 100.0)),
            Cell::from(bar).style(Style::new().fg(kind_color(kind))),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(18),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Min(0),
        ],
    )
    .header(
        Row::new(["kind", "count", "per s", "share", ""]).style(Style::new().fg(Color::DarkGray)),
    )
    .block(panel(format!(" Results by kind{stale} ")));
    frame.render_widget(table, area);
}

fn kind_color(kind: &str) -> Color {
    match kind {
        "clean" => Color::Green,
        "quarantined" => Color::Red,
        "rate_limited" | "payload_too_large" => Color::Yellow,
        "ignored" => Color::Blue,
        _ => Color::Magenta,
    }
}

fn pressure_color(level: &str) -> Color {
    match level {
        "normal" => Color::Green,
        "elevated" => Color::Yellow,
        "high" => Color::LightRed,
        "critical" => Color::Red,
        _ => Color::DarkGray,
    }
}

fn draw_quarantine(frame: &mut Frame, area: Rect, s: &StatsView, stale: &str) {
    let q = &s.quarantine;
    let block = panel(format!(" Quarantine{stale} "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [pressure, items, bytes, severities] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    let level = q.pressure_name();
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw("pressure: "),
            Span::styled(
                level.to_owned(),
                Style::new()
                    .fg(pressure_color(level))
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("   fill {:.1}%", q.fill_ratio() * 100.0)),
        ])),
        pressure,
    );
    let ratio = |used: u64, max: u64| {
        if max == 0 {
            0.0
        } else {
            (used as f64 / max as f64).clamp(0.0, 1.0)
        }
    };
    let color = pressure_color(level);
    frame.render_widget(
        Gauge::default()
            .ratio(ratio(q.count, q.max_count))
            .label(format!("items {} / {}", q.count, q.max_count))
            .gauge_style(Style::new().fg(color)),
        items,
    );
    frame.render_widget(
        Gauge::default()
            .ratio(ratio(q.bytes, q.max_bytes))
            .label(format!(
                "bytes {} / {}",
                text::bytes(q.bytes),
                text::bytes(q.max_bytes)
            ))
            .gauge_style(Style::new().fg(color)),
        bytes,
    );
    let held = q.count.max(1) as f64;
    let rows = q.by_severity().into_iter().map(|(sev, n)| {
        let bar = "█".repeat(((n as f64 / held) * 20.0).round().clamp(0.0, 20.0) as usize);
        Row::new(vec![
            Cell::from(sev.clone()),
            Cell::from(n.to_string()),
            Cell::from(bar).style(Style::new().fg(severity_color(&sev))),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Min(0),
            ],
        )
        .header(Row::new(["severity", "held", ""]).style(Style::new().fg(Color::DarkGray))),
        severities,
    );
}

fn severity_color(severity: &str) -> Color {
    match severity {
        "critical" => Color::Red,
        "high" => Color::LightRed,
        "medium" => Color::Yellow,
        "low" => Color::Green,
        _ => Color::DarkGray,
    }
}

fn draw_sources(frame: &mut Frame, area: Rect, s: &StatsView, stale: &str) {
    let rows = s.top_sources.iter().map(|src| {
        let blocked = if src.blocked {
            Cell::from("blocked").style(Style::new().fg(Color::Red))
        } else {
            Cell::from("")
        };
        Row::new(vec![
            Cell::from(src.source.clone()),
            Cell::from(src.intercepts.to_string()),
            Cell::from(src.threats.to_string()),
            blocked,
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(16),
            Constraint::Length(11),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    )
    .header(
        Row::new(["source", "intercepts", "threats", ""]).style(Style::new().fg(Color::DarkGray)),
    )
    .block(panel(format!(" Top sources{stale} ")));
    frame.render_widget(table, area);
}

fn draw_threats(frame: &mut Frame, area: Rect, s: &StatsView, stale: &str) {
    let rows = s.recent_threats.iter().map(|t| {
        Row::new(vec![
            Cell::from(text::short_signature(&t.signature, 16)),
            Cell::from(t.severity.clone()).style(Style::new().fg(severity_color(&t.severity))),
            Cell::from(text::bytes(t.size)),
            Cell::from(text::age_ms(t.captured_ms)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(30),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(
        Row::new(["signature", "severity", "size", "age"]).style(Style::new().fg(Color::DarkGray)),
    )
    .block(panel(format!(" Recent threats{stale} ")));
    frame.render_widget(table, area);
}

fn draw_audit(frame: &mut Frame, area: Rect, s: &StatsView, stale: &str) {
    let dropped_style = if s.notifications_dropped > 0 {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    };
    let lines = vec![
        Line::raw(format!(
            "audit chain: {} records   head {}",
            s.audit.length,
            if s.audit.head_hash.is_empty() {
                "-"
            } else {
                &s.audit.head_hash
            }
        )),
        Line::from(vec![
            Span::styled(
                format!("notifications dropped: {}", s.notifications_dropped),
                dropped_style,
            ),
            Span::raw(format!(
                "   rate limiter: {} sources tracked, {} blocked   reload failures: {}   \
                 panics caught: {}",
                s.rate_limited_sources_active,
                s.rate_limited_sources_blocked,
                s.reload_failures,
                s.panics_caught
            )),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(panel(format!(" Audit and health{stale} "))),
        area,
    );
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::model::{SourceView, ThreatView};

    fn screen(dash: &Dashboard, w: u16, h: u16) -> String {
        // TestBackend cannot fail: its error type is uninhabited.
        let Ok(mut term) = Terminal::new(TestBackend::new(w, h));
        assert!(term.draw(|f| draw(f, dash)).is_ok());
        let buf = term.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn sample() -> StatsView {
        let mut s = StatsView {
            total_intercepts: 4242,
            clean: 4000,
            quarantined: 242,
            notifications_dropped: 3,
            uptime_ms: 61_000,
            config_generation: 2,
            ..Default::default()
        };
        s.quarantine.count = 242;
        s.quarantine.max_count = 1000;
        s.quarantine.pressure = "elevated".into();
        s.quarantine.count_by_severity.insert("high".into(), 242);
        s.audit.length = 17;
        s.audit.head_hash = "ab".repeat(32);
        s.top_sources.push(SourceView {
            source: "203.0.113.9".into(),
            intercepts: 900,
            threats: 9,
            blocked: true,
        });
        s.recent_threats.push(ThreatView {
            signature: format!("injection:{}", "cd".repeat(32)),
            category: "injection".into(),
            severity: "high".into(),
            size: 99,
            captured_ms: 1.0,
        });
        s
    }

    #[test]
    fn every_panel_shows_its_numbers() {
        let mut dash = Dashboard::new("unix:/tmp/t.sock", Duration::from_millis(500));
        dash.update(sample(), Instant::now());
        let text = screen(&dash, 160, 50);
        for needle in [
            "● connected",
            "total intercepts: 4242",
            "quarantined",
            "242",
            "pressure: elevated",
            "items 242 / 1000",
            "203.0.113.9",
            "blocked",
            "injection:cdcdcdcdcdcdcdcd…",
            "audit chain: 17 records",
            &"ab".repeat(32),
            "notifications dropped: 3",
            "uptime 1m 01s",
        ] {
            assert!(text.contains(needle), "{needle:?} not on screen:\n{text}");
        }
    }

    #[test]
    fn disconnected_is_shown_and_tiny_terminals_do_not_panic() {
        let mut dash = Dashboard::new("unix:/tmp/t.sock", Duration::from_millis(500));
        dash.update(sample(), Instant::now());
        dash.lost("connection refused");
        let text = screen(&dash, 160, 50);
        assert!(text.contains("○ disconnected"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("(stale)"), "{text}");
        for (w, h) in [(1, 1), (20, 5), (40, 12), (80, 24), (80, 34), (400, 200)] {
            let _ = screen(&dash, w, h);
        }
        let small = screen(&dash, 60, 12);
        assert!(small.contains("○ disconnected"), "{small}");
        assert!(small.contains("total intercepts: 4242"), "{small}");
        let fresh = Dashboard::new("unix:/tmp/t.sock", Duration::from_millis(500));
        assert!(screen(&fresh, 80, 24).contains("connecting"));
    }
}
