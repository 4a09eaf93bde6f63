//! Process-wide event counters for the Prometheus `/metrics` page.
//!
//! Owns: the counters and histograms of events that leave no other trace
//! in portico's state — handshake and auth failures, REST calls, webhook
//! outcomes, proxied request latency, upstream errors, TLS handshakes, ACME
//! orders. Receives: one call per event from the layer where it happens
//! (`tls`, `proxy`, `server`, the fronts). Hands on: [`families`], which
//! the admin listener registers and encodes at scrape time, together with
//! what it reads from live state then (hub connection counts, cluster link,
//! supervised processes, certificates).
//!
//! Nothing here is on the fan-out path: the hub counts its messages in
//! per-app atomics of its own. The per-request figure, upstream latency, is
//! resolved per route when a config generation is built ([`RouteUpstream`])
//! and recorded without a lock ([`Latency`]). Each other call is one atomic
//! add after a read-locked lookup of its label set (a short `parking_lot`
//! read lock, no allocation once the label set exists); label values are a
//! fixed set of `&'static str` except a route's path, an `Arc<str>` cloned,
//! not copied.
//!
//! The counters are global (one process, one `/metrics`), so in-process
//! tests share them; the tests that assert exact amounts run the binary.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

mod latency;

pub use latency::Latency;

/// A label value shared with the config (a route's path).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Text(pub Arc<str>);

impl EncodeLabelValue for Text {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

type Static1 = [(&'static str, &'static str); 1];
type Static2 = [(&'static str, &'static str); 2];
/// `route` and `kind`.
type RouteKind = ([(&'static str, Text); 1], Static1);
/// `route`, `kind` and `cause`.
type RouteLabels = ([(&'static str, Text); 1], Static2);

/// Every event counter; see the module doc.
pub struct Families {
    handshake_failures: Family<Static2, Counter>,
    auth_failures: Family<Static2, Counter>,
    slow_consumer_closes: Counter,
    rest_calls: Family<Static2, Counter>,
    webhooks: Family<Static1, Counter>,
    upstream_latency: Family<RouteKind, Latency>,
    upstream_errors: Family<RouteLabels, Counter>,
    tls_handshakes: Counter,
    tls_failures: Family<Static1, Counter>,
    acme_orders: Counter,
    acme_failures: Counter,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| Families {
    handshake_failures: Family::default(),
    auth_failures: Family::default(),
    slow_consumer_closes: Counter::default(),
    rest_calls: Family::default(),
    webhooks: Family::default(),
    upstream_latency: Family::default(),
    upstream_errors: Family::default(),
    tls_handshakes: Counter::default(),
    tls_failures: Family::default(),
    acme_orders: Counter::default(),
    acme_failures: Counter::default(),
});

/// The process's counters.
pub fn families() -> &'static Families {
    &FAMILIES
}

impl Families {
    /// Registers every family under `portico_` in `registry`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "portico_handshake_failures",
            "WebSocket handshakes refused, by protocol (pusher, supabase) and reason",
            self.handshake_failures.clone(),
        );
        r.register(
            "portico_auth_failures",
            "Channel subscriptions and sign-ins refused for a bad signature or token, by protocol and reason",
            self.auth_failures.clone(),
        );
        r.register(
            "portico_slow_consumer_closes",
            "WebSockets (Pusher or Supabase) closed because their outbound queue was full",
            self.slow_consumer_closes.clone(),
        );
        r.register(
            "portico_rest_calls",
            "REST API calls answered, by protocol and HTTP status",
            self.rest_calls.clone(),
        );
        r.register(
            "portico_webhooks",
            "Webhook requests by outcome: delivered, failed (given up), retried, dropped (queue full)",
            self.webhooks.clone(),
        );
        r.register(
            "portico_upstream_request_duration_seconds",
            "Time from a proxied request reaching its route to the upstream's answer, by route and upstream kind (http, fastcgi)",
            self.upstream_latency.clone(),
        );
        r.register(
            "portico_upstream_errors",
            "Proxied requests answered with an error page because of the upstream, by route and cause",
            self.upstream_errors.clone(),
        );
        r.register(
            "portico_tls_handshakes",
            "TLS handshakes completed",
            self.tls_handshakes.clone(),
        );
        r.register(
            "portico_tls_handshake_failures",
            "TLS handshakes that failed, by reason (timeout, peer_alert, tls, io)",
            self.tls_failures.clone(),
        );
        r.register(
            "portico_acme_orders",
            "ACME certificate orders placed",
            self.acme_orders.clone(),
        );
        r.register(
            "portico_acme_order_failures",
            "ACME certificate orders that failed",
            self.acme_failures.clone(),
        );
    }
}

/// A WebSocket handshake of `protocol` was refused for `reason`.
pub fn handshake_failed(protocol: &'static str, reason: &'static str) {
    FAMILIES
        .handshake_failures
        .get_or_create(&[("protocol", protocol), ("reason", reason)])
        .inc();
}

/// A subscription or sign-in of `protocol` failed its signature or token.
pub fn auth_failed(protocol: &'static str, reason: &'static str) {
    FAMILIES
        .auth_failures
        .get_or_create(&[("protocol", protocol), ("reason", reason)])
        .inc();
}

/// A hub socket was closed as a slow consumer (counted once per socket).
pub fn slow_consumer_closed() {
    FAMILIES.slow_consumer_closes.inc();
}

/// A REST call of `protocol` was answered with `status`.
pub fn rest_call(protocol: &'static str, status: http_status::Code) {
    FAMILIES
        .rest_calls
        .get_or_create(&[("protocol", protocol), ("status", status.as_str())])
        .inc();
}

/// A webhook request ended with `outcome` (`delivered`, `failed`,
/// `retried`, `dropped`).
pub fn webhook(outcome: &'static str) {
    FAMILIES
        .webhooks
        .get_or_create(&[("outcome", outcome)])
        .inc();
}

/// What a proxied route reports to `/metrics`, resolved once when its
/// config generation is built so a request touches no label map: the
/// route's latency histogram (its shard counters, shared with the family)
/// and its labels for the rare error.
#[derive(Clone, Debug)]
pub struct RouteUpstream {
    route: Arc<str>,
    kind: &'static str,
    latency: Latency,
}

impl RouteUpstream {
    /// The handle for `route` proxying to an upstream of `kind` (`http`,
    /// `fastcgi`); the same route and kind share one histogram across
    /// reloads.
    pub fn new(route: &Arc<str>, kind: &'static str) -> RouteUpstream {
        let latency = FAMILIES
            .upstream_latency
            .get_or_create_owned(&([("route", Text(route.clone()))], [("kind", kind)]));
        RouteUpstream {
            route: route.clone(),
            kind,
            latency,
        }
    }

    /// The upstream answered after `took`.
    pub fn answered(&self, took: Duration) {
        self.latency.observe(took);
    }

    /// The request was answered with an error page for `cause`.
    pub fn failed(&self, cause: &'static str) {
        FAMILIES
            .upstream_errors
            .get_or_create(&(
                [("route", Text(self.route.clone()))],
                [("kind", self.kind), ("cause", cause)],
            ))
            .inc();
    }
}

/// A TLS handshake ended: `Ok` or the failure's reason.
pub fn tls_handshake(result: Result<(), &'static str>) {
    match result {
        Ok(()) => {
            FAMILIES.tls_handshakes.inc();
        }
        Err(reason) => {
            FAMILIES
                .tls_failures
                .get_or_create(&[("reason", reason)])
                .inc();
        }
    }
}

/// An ACME order was placed; `ok` says whether it ended with a certificate.
pub fn acme_order(ok: bool) {
    FAMILIES.acme_orders.inc();
    if !ok {
        FAMILIES.acme_failures.inc();
    }
}

/// HTTP status codes as label values without formatting.
pub mod http_status {
    /// A status code (100–999).
    #[derive(Clone, Copy, Debug)]
    pub struct Code(pub u16);

    /// "100" … "999", built once.
    static NAMES: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| (0..1000).map(|c| c.to_string()).collect());

    impl Code {
        /// The code as text; out-of-range codes are `"other"`.
        pub fn as_str(self) -> &'static str {
            NAMES
                .get(usize::from(self.0))
                .map_or("other", |s| s.as_str())
        }
    }
}
