//! Entry point the router calls for every request routed to `"pusher"`.

use http::{Request, Response};
use hyper::body::Incoming;

use crate::config::apps::Apps;
use crate::http::RequestCtx;
use crate::http::body::Body;
use crate::http::error::{ErrorKind, HttpError, wants_html};
use crate::shutdown::Shutdown;

/// The Pusher front: owns the apps and (soon) the hub.
#[derive(Debug)]
pub struct PusherFront {
    _shutdown: Shutdown,
}

impl PusherFront {
    pub fn new(_apps: &Apps, shutdown: Shutdown) -> PusherFront {
        PusherFront {
            _shutdown: shutdown,
        }
    }

    /// Applies a reloaded `[[apps]]` set.
    pub fn reload(&self, _apps: &Apps) {}

    /// Serves a WebSocket upgrade or a REST call.
    pub async fn handle(&self, req: Request<Incoming>, _ctx: RequestCtx) -> Response<Body> {
        HttpError::new(ErrorKind::NotBuilt {
            what: "the Pusher hub",
        })
        .to_response(wants_html(req.headers()))
    }
}
