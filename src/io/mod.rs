//! Stream adapters every layer may use: a socket that can move between
//! runtimes ([`movable`]) and the `AsyncWrite` pass-through for wrappers
//! that only watch reads ([`write_through`]).

pub mod movable;
pub(crate) mod write_through;
