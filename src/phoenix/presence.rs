//! Phoenix.Presence state of the Supabase front, in Phoenix's shapes.
//!
//! Owns: per topic, presence key → metas, one meta per (socket, key), each
//! with a `phx_ref`. Receives: track/untrack from sessions (and untrack of
//! everything a socket tracked when it leaves or disconnects). Hands on: the
//! `presence_state` object for a fresh join and `presence_diff` objects
//! (`{"joins":{..},"leaves":{..}}`) that the front serialises once per vsn
//! and fans out through the hub.
//!
//! This is protocol state (Phoenix's metas-per-key model differs from
//! Pusher's one-member-per-user), so it lives in the front; the hub only
//! fans the resulting frames out.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};

/// The hub's connection id (`crate::hub::ConnId`).
type ConnId = u64;

/// A unique `phx_ref` (Phoenix uses base64 of a unique integer): a
/// random per-process prefix, so refs stay unique across the nodes of a
/// cluster (clients tell metas apart by ref), then a counter.
fn next_ref() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    static SALT: std::sync::OnceLock<[u8; 4]> = std::sync::OnceLock::new();
    let n = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let first = n.iter().position(|b| *b != 0).unwrap_or(7);
    let mut b = SALT.get_or_init(rand::random).to_vec();
    b.extend_from_slice(&n[first..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b)
}

#[derive(Debug, Clone)]
struct Meta {
    conn: ConnId,
    phx_ref: String,
    payload: Map<String, Value>,
}

impl Meta {
    fn to_json(&self, prev: Option<&str>) -> Value {
        let mut m = self.payload.clone();
        m.insert("phx_ref".into(), Value::String(self.phx_ref.clone()));
        if let Some(p) = prev {
            m.insert("phx_ref_prev".into(), Value::String(p.to_string()));
        }
        Value::Object(m)
    }
}

/// Presence of one topic.
#[derive(Debug, Default)]
pub struct TopicPresence {
    keys: HashMap<String, Vec<Meta>>,
}

/// A `presence_diff` payload: `{"joins": {..}, "leaves": {..}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// The JSON object.
    pub json: Value,
}

fn entry(map: &mut Map<String, Value>, key: &str, meta: Value) {
    let e = map
        .entry(key.to_string())
        .or_insert_with(|| serde_json::json!({ "metas": [] }));
    if let Some(Value::Array(a)) = e.get_mut("metas") {
        a.push(meta);
    }
}

impl TopicPresence {
    /// Tracks `conn` under `key` with `payload`. A re-track with a new
    /// payload is a join (with `phx_ref_prev`) plus a leave of the old meta;
    /// an identical payload is a no-op (`None`).
    pub fn track(&mut self, conn: ConnId, key: &str, payload: Map<String, Value>) -> Option<Diff> {
        let metas = self.keys.entry(key.to_string()).or_default();
        let (mut joins, mut leaves) = (Map::new(), Map::new());
        let new_ref = next_ref();
        match metas.iter_mut().find(|m| m.conn == conn) {
            Some(m) if m.payload == payload => return None,
            Some(m) => {
                let old = m.clone();
                m.phx_ref = new_ref;
                m.payload = payload;
                entry(&mut joins, key, m.to_json(Some(&old.phx_ref)));
                entry(&mut leaves, key, old.to_json(None));
            }
            None => {
                let m = Meta {
                    conn,
                    phx_ref: new_ref,
                    payload,
                };
                entry(&mut joins, key, m.to_json(None));
                metas.push(m);
            }
        }
        Some(Diff {
            json: serde_json::json!({ "joins": joins, "leaves": leaves }),
        })
    }

    /// Removes every meta of `conn`; `None` if it tracked nothing.
    pub fn untrack(&mut self, conn: ConnId) -> Option<Diff> {
        let mut leaves = Map::new();
        self.keys.retain(|key, metas| {
            metas.retain(|m| {
                if m.conn == conn {
                    entry(&mut leaves, key, m.to_json(None));
                    false
                } else {
                    true
                }
            });
            !metas.is_empty()
        });
        if leaves.is_empty() {
            return None;
        }
        Some(Diff {
            json: serde_json::json!({ "joins": {}, "leaves": leaves }),
        })
    }

    /// The `presence_state` payload: `{key: {metas: [..]}}`.
    pub fn state(&self) -> Value {
        let mut out = Map::new();
        for (key, metas) in &self.keys {
            for m in metas {
                entry(&mut out, key, m.to_json(None));
            }
        }
        Value::Object(out)
    }

    /// One entry per meta, for the cluster: (its `phx_ref`, the JSON
    /// `{"key": .., "meta": {..}}`).
    pub fn entries(&self) -> Vec<(Arc<str>, Bytes)> {
        let mut out = Vec::new();
        for (key, metas) in &self.keys {
            for m in metas {
                let e = serde_json::json!({ "key": key, "meta": m.to_json(None) });
                out.push((Arc::from(m.phx_ref.as_str()), Bytes::from(e.to_string())));
            }
        }
        out
    }

    /// Whether nobody is tracked.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Distinct presence keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

/// Adds the cluster entries (`{"key","meta"}` JSON, as
/// [`TopicPresence::entries`] makes them) to a `{key: {metas: [..]}}` map.
pub fn add_entries(map: &mut Map<String, Value>, entries: &[Bytes]) {
    for e in entries {
        if let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(e)
            && let (Some(Value::String(key)), Some(meta)) = (o.remove("key"), o.remove("meta"))
        {
            entry(map, &key, meta);
        }
    }
}

/// The `presence_diff` of cluster entries that appeared and went.
pub fn entries_diff(joins: &[Bytes], leaves: &[Bytes]) -> Diff {
    let (mut j, mut l) = (Map::new(), Map::new());
    add_entries(&mut j, joins);
    add_entries(&mut l, leaves);
    Diff {
        json: serde_json::json!({ "joins": j, "leaves": l }),
    }
}

/// Presence of every topic of the front.
#[derive(Debug, Default)]
pub struct Presences {
    topics: parking_lot::Mutex<HashMap<String, TopicPresence>>,
}

impl Presences {
    /// Runs `f` on `topic`'s presence, dropping the topic when it empties.
    pub fn with<R>(&self, topic: &str, f: impl FnOnce(&mut TopicPresence) -> R) -> R {
        let mut topics = self.topics.lock();
        let tp = topics.entry(topic.to_string()).or_default();
        let r = f(tp);
        if tp.is_empty() {
            topics.remove(topic);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn refs(v: &Value, side: &str, key: &str) -> Vec<String> {
        v[side][key]["metas"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["phx_ref"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn track_join_state_untrack() {
        let mut p = TopicPresence::default();
        let d = p.track(1, "a", map(json!({"user":"a"}))).unwrap();
        assert_eq!(d.json["leaves"], json!({}));
        assert_eq!(d.json["joins"]["a"]["metas"][0]["user"], "a");
        let r = refs(&d.json, "joins", "a");
        assert_eq!(r.len(), 1);
        let st = p.state();
        assert_eq!(st["a"]["metas"][0]["phx_ref"], r[0].as_str());
        let d = p.untrack(1).unwrap();
        assert_eq!(d.json["joins"], json!({}));
        assert_eq!(refs(&d.json, "leaves", "a"), r);
        assert!(p.is_empty());
        assert_eq!(p.untrack(1), None);
    }

    #[test]
    fn identical_retrack_is_noop_new_payload_is_join_plus_leave() {
        let mut p = TopicPresence::default();
        let first = p.track(1, "a", map(json!({"s":1}))).unwrap();
        assert_eq!(p.track(1, "a", map(json!({"s":1}))), None);
        let d = p.track(1, "a", map(json!({"s":2}))).unwrap();
        let old = refs(&first.json, "joins", "a");
        assert_eq!(refs(&d.json, "leaves", "a"), old);
        assert_eq!(
            d.json["joins"]["a"]["metas"][0]["phx_ref_prev"],
            old[0].as_str()
        );
        assert_eq!(d.json["joins"]["a"]["metas"][0]["s"], 2);
        assert_eq!(p.state()["a"]["metas"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn two_sockets_same_key_have_two_metas() {
        let mut p = TopicPresence::default();
        p.track(1, "u", map(json!({})));
        p.track(2, "u", map(json!({})));
        assert_eq!(p.state()["u"]["metas"].as_array().unwrap().len(), 2);
        assert_eq!(p.key_count(), 1);
        p.untrack(1);
        assert_eq!(p.state()["u"]["metas"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn entries_make_the_same_state_and_diffs() {
        let mut p = TopicPresence::default();
        p.track(1, "u", map(json!({"n": 1})));
        p.track(2, "u", map(json!({"n": 2})));
        p.track(3, "v", map(json!({})));
        let e: Vec<Bytes> = p.entries().into_iter().map(|(_, b)| b).collect();
        let mut st = Map::new();
        add_entries(&mut st, &e);
        let mut a = Value::Object(st);
        let mut b = p.state();
        for v in [&mut a, &mut b] {
            for k in ["u", "v"] {
                if let Some(Value::Array(m)) = v[k].get_mut("metas") {
                    m.sort_by_key(|x| x["phx_ref"].as_str().unwrap_or("").to_string());
                }
            }
        }
        assert_eq!(a, b);
        let d = entries_diff(&e[..1], &e[1..2]);
        assert_eq!(d.json["joins"].as_object().map(|o| o.len()), Some(1));
        assert_eq!(d.json["leaves"].as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn refs_are_unique() {
        let a = next_ref();
        let b = next_ref();
        assert_ne!(a, b);
        assert!(!a.is_empty());
    }

    #[test]
    fn registry_drops_empty_topics() {
        let r = Presences::default();
        r.with("t", |p| p.track(1, "k", Map::new()));
        r.with("t", |p| p.untrack(1));
        assert!(r.topics.lock().is_empty());
    }
}
