//! The Supabase Realtime front of the in-process hub: Phoenix channels on
//! `/realtime/v1/websocket` (and `/socket/websocket`, the path behind Kong's
//! rewrite), JWT auth, private-channel rules and REST broadcast.
//!
//! - [`codec`]: the pure vsn 1.0.0 / 2.0.0 serializer (fuzzed).
//! - [`wire`]: reply statuses, join refusals, channel ends and close codes.
//! - [`jwt`]: HS256/384/512 verification with secret rotation, opaque keys.
//! - [`policy`]: the private-channel rule table.

pub mod codec;
pub mod jwt;
pub mod policy;
pub mod presence;
pub mod wire;
