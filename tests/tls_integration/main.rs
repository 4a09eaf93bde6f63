//! TLS over real loopback sockets: portico's `ServerConfig`, resolver and
//! handshake against a tokio-rustls client.
//!
//! - `handshake`: dev CA trust, SNI name and IP, ALPN h2/http1.1, TLS 1.2
//!   and 1.3, resumption, the handshake deadline, untrusted-CA alerts.
//! - `seam`: the ACME TLS-ALPN-01 challenge hook.
//! - `swap`: SNI choosing among certificates, swapping the store under an
//!   open connection, rejecting a bad new pair.

mod handshake;
mod seam;
mod support;
mod swap;
