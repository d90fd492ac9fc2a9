//! Body types: [`InspectedBody`] (what the inner service receives: the prefix the layer
//! read, then the rest streamed from the original body) and [`ResponseBody`] (the inner
//! service's body or one of the layer's own short answers, under one type).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;

pin_project! {
    /// The request body handed to the inner service: the bytes the layer read for
    /// inspection (one frame), then whatever the original body still yields, unbuffered.
    /// The inner service sees the same bytes, trailers and error as without the layer.
    pub struct InspectedBody<B: Body> {
        prefix: Option<Bytes>,
        trailers: Option<HeaderMap>,
        error: Option<B::Error>,
        // The original body ended (or failed) while the prefix was read.
        rest_done: bool,
        #[pin]
        rest: B,
    }
}

impl<B: Body> InspectedBody<B> {
    /// The original body, untouched (nothing was read from it).
    pub fn new(body: B) -> Self {
        InspectedBody {
            prefix: None,
            trailers: None,
            error: None,
            rest_done: false,
            rest: body,
        }
    }

    /// The bytes read for inspection, if any.
    pub fn prefix(&self) -> Option<&Bytes> {
        self.prefix.as_ref()
    }

    /// Whether the original body may still yield data after the prefix.
    pub(crate) fn rest_pending(&self) -> bool {
        !self.rest_done && !self.rest.is_end_stream()
    }
}

/// The result of reading up to `limit` bytes of a body.
pub(crate) struct Prefix<B: Body> {
    /// The body to forward (prefix, then the rest).
    pub body: InspectedBody<B>,
    /// Whether reading failed (the error is replayed to the inner service).
    pub failed: bool,
}

/// Reads frames until at least `limit` data bytes are held or the body ends. Frames are
/// kept whole, so the prefix may exceed `limit` by at most one frame.
pub(crate) async fn read_prefix<B>(mut body: B, limit: usize) -> Prefix<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut held = 0usize;
    let mut trailers = None;
    let mut error = None;
    let mut rest_done = false;
    while held < limit {
        match body.frame().await {
            None => {
                rest_done = true;
                break;
            }
            Some(Err(e)) => {
                error = Some(e);
                rest_done = true;
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    held = held.saturating_add(data.len());
                    // One chunk is kept as is; a second one starts a joined copy (the
                    // detector and the scent want one contiguous slice).
                    match (&mut first, &mut joined) {
                        (None, None) => first = Some(data),
                        (Some(f), None) => {
                            let mut buf = BytesMut::with_capacity(held.max(limit));
                            buf.extend_from_slice(f);
                            buf.extend_from_slice(&data);
                            first = None;
                            joined = Some(buf);
                        }
                        (_, Some(buf)) => buf.extend_from_slice(&data),
                    }
                }
                Err(frame) => {
                    // Trailers end the body.
                    trailers = frame.into_trailers().ok();
                    rest_done = true;
                    break;
                }
            },
        }
    }
    let prefix = match joined {
        Some(buf) => Some(buf.freeze()),
        None => first,
    };
    let failed = error.is_some();
    Prefix {
        body: InspectedBody {
            prefix,
            trailers,
            error,
            rest_done,
            rest: body,
        },
        failed,
    }
}

impl<B> Body for InspectedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(error) = this.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        if *this.rest_done {
            return Poll::Ready(None);
        }
        this.rest.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none()
            && self.error.is_none()
            && self.trailers.is_none()
            && (self.rest_done || self.rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        if self.rest_done {
            return SizeHint::with_exact(held);
        }
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(held));
        if let Some(upper) = rest.upper().and_then(|u| u.checked_add(held)) {
            hint.set_upper(upper);
        }
        hint
    }
}

pin_project! {
    /// The response body: the inner service's body, or a short answer of the layer's own
    /// (403 / 429 / 413). Errors are only ever the inner body's.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Own { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        ResponseBody {
            kind: Kind::Inner { body },
        }
    }

    /// A complete body of `data` (one frame).
    pub fn full(data: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Own { data: Some(data) },
        }
    }

    /// Whether this is one of the layer's own answers.
    pub fn is_own(&self) -> bool {
        matches!(self.kind, Kind::Own { .. })
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Own { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Own { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Own { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Empty, StreamBody};

    type Item = Result<Frame<Bytes>, &'static str>;
    type TestBody = StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Item>>>;

    fn stream(frames: Vec<Item>) -> TestBody {
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn data(s: &'static str) -> Item {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    /// Every frame of `body`: data as text, trailers as `[k=v]`, an error as `!e`.
    async fn drain<B: Body<Data = Bytes, Error = &'static str> + Unpin>(
        mut body: B,
    ) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(match frame {
                Err(e) => format!("!{e}"),
                Ok(f) => match f.into_data() {
                    Ok(d) => String::from_utf8_lossy(&d).into_owned(),
                    Err(f) => {
                        let t = f.into_trailers().unwrap_or_default();
                        let (k, v) = t.iter().next().unwrap();
                        format!("[{k}={}]", v.to_str().unwrap())
                    }
                },
            });
        }
        out
    }

    #[tokio::test]
    async fn the_prefix_is_joined_and_the_rest_streams_untouched() {
        let body = stream(vec![data("ab"), data("cd"), data("ef"), data("gh")]);
        let read = read_prefix(body, 3).await;
        assert!(!read.failed);
        assert_eq!(read.body.prefix().map(|b| &b[..]), Some(&b"abcd"[..]));
        assert!(read.body.rest_pending());
        assert_eq!(drain(read.body).await, vec!["abcd", "ef", "gh"]);
    }

    #[tokio::test]
    async fn trailers_and_errors_met_while_reading_are_replayed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", http::HeaderValue::from_static("7"));
        let body = stream(vec![data("ab"), Ok(Frame::trailers(trailers))]);
        let read = read_prefix(body, 100).await;
        assert!(!read.failed && !read.body.rest_pending());
        assert_eq!(read.body.size_hint().exact(), Some(2));
        assert_eq!(drain(read.body).await, vec!["ab", "[x-sum=7]"]);

        let body = stream(vec![data("ab"), Err("reset"), data("never")]);
        let read = read_prefix(body, 100).await;
        assert!(read.failed);
        assert_eq!(drain(read.body).await, vec!["ab", "!reset"]);
    }

    #[tokio::test]
    async fn an_untouched_body_and_own_answers() {
        let body = InspectedBody::new(Empty::<Bytes>::new());
        assert!(body.is_end_stream());
        let own: ResponseBody<Empty<Bytes>> = ResponseBody::full(Bytes::from_static(b"no"));
        assert!(own.is_own());
        assert_eq!(own.size_hint().exact(), Some(2));
        let collected = own.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"no");
    }
}
