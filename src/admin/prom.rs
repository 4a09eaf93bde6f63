//! `GET /metrics`: the Prometheus text format (version 0.0.4).
//!
//! Owns: the metric names read from live state at scrape time — hub
//! connections, channels, subscriptions and message counts per app and
//! protocol, certificate expiry, the cluster link, supervised processes,
//! the process's memory and file descriptors. Receives: the edge. Hands
//! on: one text page that also holds the event counters of
//! [`crate::metrics`]. A scrape builds a fresh registry from current
//! values, so nothing here adds work between scrapes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::status::{Counts, app_rows, counts};
use crate::edge::EdgeInner;

/// The `Content-Type` of the page.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;

/// A gauge family filled once.
fn gauges(r: &mut Registry, name: &str, help: &str, rows: &[(Labels, i64)]) {
    let f = Family::<Labels, Gauge>::default();
    for (l, v) in rows {
        f.get_or_create(l).set(*v);
    }
    r.register(name, help, f);
}

/// A counter family filled once from totals kept elsewhere.
fn counters(r: &mut Registry, name: &str, help: &str, rows: &[(Labels, u64)]) {
    let f = Family::<Labels, Counter>::default();
    for (l, v) in rows {
        f.get_or_create(l).inc_by(*v);
    }
    r.register(name, help, f);
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    r.register(name, help, g);
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(v);
    r.register(name, help, c);
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The whole page.
pub fn render(edge: &EdgeInner) -> String {
    let mut r = Registry::default();
    hub(&mut r, edge);
    certificates(&mut r, edge);
    cluster(&mut r, edge);
    processes(&mut r, edge);
    own_process(&mut r);
    crate::metrics::families().register(&mut r);
    let mut out = String::new();
    if prometheus_text::encode(&mut out, &r).is_err() {
        out.clear();
    }
    out
}

fn hub(r: &mut Registry, edge: &EdgeInner) {
    let (mut conns, mut chans, mut subs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut inn, mut out, mut drops) = (Vec::new(), Vec::new(), Vec::new());
    let rt = edge.runtime();
    for row in app_rows(edge, &rt.config) {
        let l: Labels = vec![("app", row.id), ("protocol", row.protocol.to_string())];
        let c = row.hub.as_deref().map_or_else(Counts::default, counts);
        conns.push((l.clone(), n(c.connections)));
        chans.push((l.clone(), n(c.channels)));
        subs.push((l.clone(), n(c.subscriptions)));
        inn.push((l.clone(), c.messages.published));
        out.push((l.clone(), c.messages.delivered));
        drops.push((l, c.messages.evicted));
    }
    gauges(
        r,
        "portico_connections",
        "Open WebSocket connections of the built-in fronts, by app and protocol (pusher, supabase)",
        &conns,
    );
    gauges(
        r,
        "portico_channels",
        "Occupied channels, by app and protocol",
        &chans,
    );
    gauges(
        r,
        "portico_subscriptions",
        "Channel subscriptions, by app and protocol",
        &subs,
    );
    counters(
        r,
        "portico_messages_in",
        "Messages published into the hub (client events, REST, bridged, from other nodes), by app and protocol",
        &inn,
    );
    counters(
        r,
        "portico_messages_out",
        "Frames queued for subscribers (messages and protocol frames), by app and protocol",
        &out,
    );
    counters(
        r,
        "portico_fanout_drops",
        "Frames not queued because the subscriber's queue was full (the subscriber is closed as a slow consumer), by app and protocol",
        &drops,
    );
}

fn certificates(r: &mut Registry, edge: &EdgeInner) {
    // One sample per name: the soonest expiry among the certificates
    // covering it.
    let mut by_name: BTreeMap<String, SystemTime> = BTreeMap::new();
    for c in edge.tls().certificates() {
        let names = c
            .dns_names
            .iter()
            .cloned()
            .chain(c.ip_addrs.iter().map(|ip| ip.to_string()));
        for name in names {
            let e = by_name.entry(name).or_insert(c.not_after);
            *e = (*e).min(c.not_after);
        }
    }
    let rows: Vec<(Labels, i64)> = by_name
        .into_iter()
        .map(|(d, t)| {
            let secs = super::status::seconds_between(SystemTime::UNIX_EPOCH, t);
            (vec![("domain", d)], secs)
        })
        .collect();
    gauges(
        r,
        "portico_certificate_expiry_timestamp_seconds",
        "When the certificate served for a name expires (Unix time)",
        &rows,
    );
}

fn cluster(r: &mut Registry, edge: &EdgeInner) {
    let Some(c) = edge.cluster() else { return };
    let s = c.stats();
    gauge(
        r,
        "portico_cluster_link_up",
        "1 when both connections to the cluster's Redis are up",
        i64::from(s.up),
    );
    counter(
        r,
        "portico_cluster_published",
        "Messages sent to the other nodes through Redis",
        s.published,
    );
    counter(
        r,
        "portico_cluster_received",
        "Messages from other nodes delivered here",
        s.received,
    );
    counter(
        r,
        "portico_cluster_dropped",
        "Messages not sent to the other nodes (the outbox was full)",
        s.dropped,
    );
    counter(
        r,
        "portico_cluster_missed",
        "Messages from other nodes that never arrived (gaps in their sequence)",
        s.missed,
    );
    counter(
        r,
        "portico_cluster_reconnects",
        "Times the link to Redis came back after being down",
        s.reconnects,
    );
    gauge(
        r,
        "portico_cluster_buffered",
        "Messages waiting to be sent to Redis",
        n(s.buffered),
    );
}

fn processes(r: &mut Registry, edge: &EdgeInner) {
    let list = edge.supervisor().status();
    let up: Vec<(Labels, i64)> = list
        .iter()
        .map(|p| (vec![("name", p.name.to_string())], i64::from(p.running)))
        .collect();
    let ready: Vec<(Labels, i64)> = list
        .iter()
        .map(|p| (vec![("name", p.name.to_string())], i64::from(p.ready)))
        .collect();
    let restarts: Vec<(Labels, u64)> = list
        .iter()
        .map(|p| (vec![("name", p.name.to_string())], p.restarts))
        .collect();
    gauges(
        r,
        "portico_process_running",
        "1 while a supervised process ([[processes]]) is running",
        &up,
    );
    gauges(
        r,
        "portico_process_ready",
        "1 while a supervised process is ready",
        &ready,
    );
    counters(
        r,
        "portico_process_restarts",
        "Restarts of a supervised process after exits portico did not ask for",
        &restarts,
    );
}

fn own_process(r: &mut Registry) {
    if let Some(rss) = super::procfs::resident_bytes() {
        gauge(
            r,
            "process_resident_memory_bytes",
            "Resident memory of the portico process",
            n(rss),
        );
    }
    if let Some(fds) = super::procfs::open_fds() {
        gauge(
            r,
            "process_open_fds",
            "Open file descriptors of the portico process",
            n(fds),
        );
    }
}
