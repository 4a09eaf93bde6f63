//! The pooled HTTP client portico uses to reach upstreams.
//!
//! One client per distinct connect timeout, HTTP/1.1 to upstreams (every PHP
//! server speaks it, and WebSocket upgrades need it), keep-alive pool kept
//! across requests. TLS upstreams are verified against the system roots.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::http::body::Body;

/// A pooled HTTP/1.1 client for http and https upstreams.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Builds a client whose TCP connect gives up after `connect_timeout`.
pub fn build(connect_timeout: Duration) -> Result<UpstreamClient, rustls::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if let Some(e) = native.errors.first() {
        tracing::debug!(error = %e, "some system CA roots could not be read");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!("no system CA roots found; https upstreams will fail verification");
    }
    let tls = tls.with_root_certificates(roots).with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}
