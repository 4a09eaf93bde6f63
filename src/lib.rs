//! portico: one binary on a PHP app's public port.

pub mod tls;
