//! `secretivex-bench`: see the library documentation and `--help`.

use std::process::ExitCode;

use clap::Parser;
use secretivex_bench::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("secretivex-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Ceiling(args)) => {
            let result = secretivex_bench::ceiling::execute(&args)?;
            print!("{}", result.table());
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&result)?;
                std::fs::write(path, text + "\n")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Idle(args)) => {
            secretivex_bench::raise_nofile_limit();
            let report = secretivex_bench::idle::execute(&args)?;
            print!("{}", report.table());
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(path, text + "\n")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            secretivex_bench::raise_nofile_limit();
            let report = secretivex_bench::run::execute(&cli.run)?;
            print!("{}", report.table());
            if let Some(path) = &cli.run.json {
                report.write_json(path)?;
            }
            if let Some(path) = &cli.run.csv {
                report.write_csv(path)?;
            }
            // A signature that does not verify means the agent is broken: whatever its
            // speed, the run must not pass.
            if report.counters.verify_failures > 0 {
                eprintln!(
                    "secretivex-bench: {} sampled replies failed verification",
                    report.counters.verify_failures
                );
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
