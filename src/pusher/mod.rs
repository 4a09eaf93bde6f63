//! The Pusher protocol 7 front of the hub.
//!
//! Owns: the Pusher wire codec ([`protocol`]), channel-name rules
//! ([`channel`]) and signatures ([`auth`]). Receives: WebSocket frames and
//! REST requests for `/app/{key}` and `/apps/{id}/...`. Hands on: typed
//! operations to the hub and serialised frames to sockets.

pub mod app;
pub mod auth;
pub mod channel;
pub mod protocol;
pub mod webhooks;
