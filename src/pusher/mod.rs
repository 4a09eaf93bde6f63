//! The Pusher protocol 7 front of the in-process hub (WebSocket `/app/{key}`,
//! REST `/apps/{id}/...`).
//!
//! Owns: the Pusher wire codec ([`protocol`]), channel-name rules
//! ([`channel`]), signatures ([`auth`]), per-app settings ([`app`]) and
//! webhooks ([`webhooks`]). Receives: requests the router sends to the
//! built-in target `"pusher"`. Hands on: typed operations to the hub and
//! serialised frames to sockets.

pub mod app;
pub mod auth;
pub mod channel;
mod front;
pub mod protocol;
pub mod rest;
mod session;
mod state;
pub mod webhooks;

pub use front::PusherFront;
pub use state::FrontSettings;
