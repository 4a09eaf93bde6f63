//! portico: one binary on a PHP app's public port.

pub mod hub;
pub mod pusher;
pub mod ws;
