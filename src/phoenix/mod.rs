//! The Supabase Realtime front of the in-process hub: Phoenix channels on
//! `/realtime/v1/websocket` (and `/socket/websocket`, the path behind Kong's
//! rewrite), JWT auth, private-channel rules and REST broadcast.
//!
//! - [`front`]: HTTP entry — handshake and upgrade, REST, CORS.
//! - [`handshake`]: upgrade, vsn and API-key checks before the upgrade.
//! - `session`: one socket — join, leave, heartbeat, broadcast, presence,
//!   token refresh and expiry, limits, close codes.
//! - [`rest`]: `POST /api/broadcast` and `/api/broadcast/{topic}/events/{event}`.
//! - `upstream`: the postgres_changes splice to a real Supabase Realtime.
//! - [`fanout`]: frames serialised once per vsn for the hub.
//! - [`presence`]: Phoenix.Presence state (metas per key).
//! - [`codec`]: the pure vsn 1.0.0 / 2.0.0 serializer (fuzzed).
//! - [`wire`]: reply statuses, join refusals, channel ends and close codes.
//! - [`join`]: the `phx_join` payload.
//! - [`jwt`]: HS256/384/512 verification with secret rotation, opaque keys.
//! - [`jwks`]: a JSON Web Key Set (RS/PS/ES/EdDSA and `oct` keys by `kid`).
//! - [`policy`]: the private-channel rule table.

pub mod codec;
pub mod fanout;
mod front;
pub mod handshake;
pub mod join;
pub mod jwks;
pub mod jwt;
pub mod policy;
pub mod presence;
pub mod rest;
mod session;
mod state;
mod upstream;
pub mod wire;

pub use front::SupabaseFront;
pub use state::{NAMESPACE, topic_of};
