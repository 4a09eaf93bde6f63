//! A client's request body on its way upstream on the hyper path: errors
//! are marked as the client's ([`ClientBodyError`], so a malformed chunked
//! body is the client's 400, never the upstream's 502), and a chunked body
//! is held back by one frame, so the frame the decoder was reading when it
//! found the framing broken never goes upstream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::http::body::BoxError;

/// The client's request body failed: cut short, or its chunked framing is
/// malformed.
#[derive(Debug, thiserror::Error)]
#[error("the client's request body is malformed or was cut short: {0}")]
pub(crate) struct ClientBodyError(#[source] pub(crate) BoxError);

pin_project! {
    /// The client's body, checked on its way upstream.
    pub(crate) struct ClientBody<B> {
        #[pin]
        inner: B,
        // The last frame read, sent once the next one (or the end) has
        // been read cleanly; only for chunked bodies.
        held: Option<Frame<Bytes>>,
        hold: bool,
        ended: bool,
    }
}

impl<B> ClientBody<B> {
    /// Wraps `inner`; `chunked` turns on the one-frame hold-back.
    pub(crate) fn new(inner: B, chunked: bool) -> Self {
        ClientBody {
            inner,
            held: None,
            hold: chunked,
            ended: false,
        }
    }
}

impl<B> HttpBody for ClientBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if *this.ended {
                return Poll::Ready(this.held.take().map(Ok));
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) if !*this.hold => return Poll::Ready(Some(Ok(frame))),
                Some(Ok(frame)) => {
                    if let Some(prev) = this.held.replace(frame) {
                        return Poll::Ready(Some(Ok(prev)));
                    }
                }
                Some(Err(e)) => {
                    // The frame before the error may belong to the broken
                    // chunk: it is dropped with it.
                    this.held.take();
                    *this.ended = true;
                    return Poll::Ready(Some(Err(Box::new(ClientBodyError(e.into())))));
                }
                None => *this.ended = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.hold {
            // A chunked body has no known length.
            return SizeHint::default();
        }
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn body(
        parts: Vec<Result<&'static str, &'static str>>,
    ) -> impl HttpBody<Data = Bytes, Error = BoxError> {
        StreamBody::new(futures_util::stream::iter(parts.into_iter().map(|p| {
            p.map(|s| Frame::data(Bytes::from_static(s.as_bytes())))
                .map_err(|e| -> BoxError { e.into() })
        })))
    }

    async fn frames<B>(mut b: B) -> (Vec<String>, Option<String>)
    where
        B: HttpBody<Data = Bytes, Error = BoxError> + Unpin,
    {
        let mut out = Vec::new();
        while let Some(f) = b.frame().await {
            match f {
                Ok(f) => out.push(String::from_utf8(f.into_data().unwrap().to_vec()).unwrap()),
                Err(e) => {
                    assert!(e.is::<ClientBodyError>(), "{e}");
                    return (out, Some(e.to_string()));
                }
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn a_clean_chunked_body_goes_through_whole() {
        let (got, err) = frames(ClientBody::new(body(vec![Ok("a"), Ok("b"), Ok("c")]), true)).await;
        assert_eq!(got, ["a", "b", "c"]);
        assert!(err.is_none());
    }

    #[tokio::test]
    async fn the_frame_before_a_framing_error_is_never_sent() {
        let b = ClientBody::new(body(vec![Ok("a"), Ok("b"), Err("bad chunk")]), true);
        let (got, err) = frames(b).await;
        assert_eq!(got, ["a"]);
        assert!(err.unwrap().contains("bad chunk"));
    }

    #[tokio::test]
    async fn a_length_body_is_not_held_back_but_errors_are_the_clients() {
        let b = ClientBody::new(body(vec![Ok("a"), Ok("b"), Err("cut")]), false);
        let (got, err) = frames(b).await;
        assert_eq!(got, ["a", "b"]);
        assert!(err.is_some());
    }
}
