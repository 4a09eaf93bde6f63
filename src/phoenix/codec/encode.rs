//! Text encoders: one outbound message in the shape of the socket's vsn.
//!
//! vsn 1.0.0 servers send `{"topic","event","payload","ref"}` and never a
//! `join_ref` (Phoenix's V1 JSONSerializer); vsn 2.0.0 sends
//! `[join_ref, ref, topic, event, payload]`.

use serde::Serialize;
use serde_json::value::RawValue;

use super::Vsn;

/// One outbound text message.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The channel's current join ref (v2 only; v1 drops it).
    pub join_ref: Option<&'a str>,
    /// The ref being replied to, or `None` for pushes and broadcasts.
    pub r#ref: Option<&'a str>,
    /// `phoenix` or `realtime:<name>`.
    pub topic: &'a str,
    /// `phx_reply`, `broadcast`, `presence_state`, ...
    pub event: &'a str,
    /// The payload, already JSON.
    pub payload: &'a RawValue,
}

#[derive(Serialize)]
struct V1Out<'a> {
    topic: &'a str,
    event: &'a str,
    payload: &'a RawValue,
    #[serde(rename = "ref")]
    r#ref: Option<&'a str>,
}

/// Encodes `m` as a text frame for a `vsn` socket.
pub fn encode_text(vsn: Vsn, m: &Outgoing<'_>) -> String {
    let out = match vsn {
        Vsn::V1 => serde_json::to_string(&V1Out {
            topic: m.topic,
            event: m.event,
            payload: m.payload,
            r#ref: m.r#ref,
        }),
        Vsn::V2 => serde_json::to_string(&(m.join_ref, m.r#ref, m.topic, m.event, m.payload)),
    };
    // Only strings and already-valid raw JSON are serialised: cannot fail.
    out.expect("strings and raw JSON always serialise")
}
