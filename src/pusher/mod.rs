//! The Pusher protocol front of the in-process hub (WebSocket `/app/{key}`,
//! REST `/apps/{id}/...`).

mod front;

pub use front::PusherFront;
