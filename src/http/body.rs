//! The one response/request body type the edge hands around, and small
//! constructors for it.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};

/// Errors a body can yield, boxed: bodies come from clients, upstreams and
/// the hub, and the edge only needs to log and drop them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streaming body of `Bytes` chunks.
pub type Body = BoxBody<Bytes, BoxError>;

/// A body holding `data`.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Any body whose error converts to [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}
