//! Serializer fixtures ported from supabase/realtime
//! (`test/realtime_web/socket/v2_serializer_test.exs`), realtime-js
//! (`test/serializer.test.ts`) and the frame table of the protocol notes.

use super::*;

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_string()).unwrap()
}

fn out<'a>(
    jr: Option<&'a str>,
    r: Option<&'a str>,
    t: &'a str,
    e: &'a str,
    p: &'a RawValue,
) -> Outgoing<'a> {
    Outgoing {
        join_ref: jr,
        r#ref: r,
        topic: t,
        event: e,
        payload: p,
    }
}

fn json_payload(p: &Push) -> &str {
    match &p.payload {
        Payload::Json(r) => r.get(),
        Payload::UserBroadcast { .. } => panic!("expected JSON payload"),
    }
}

fn user(p: &Push) -> (&str, Encoding, Option<&str>, &[u8]) {
    match &p.payload {
        Payload::UserBroadcast {
            event,
            encoding,
            meta,
            data,
        } => (event, *encoding, meta.as_deref().map(RawValue::get), data),
        Payload::Json(_) => panic!("expected a user broadcast"),
    }
}

// ---- vsn negotiation -------------------------------------------------------

#[test]
fn vsn_missing_means_v1() {
    assert_eq!(Vsn::negotiate(None), Ok(Vsn::V1));
}

#[test]
fn vsn_accepts_patch_versions_of_1_0_and_2_0() {
    for (v, want) in [
        ("1.0.0", Vsn::V1),
        ("1.0.7", Vsn::V1),
        ("2.0.0", Vsn::V2),
        ("2.0.1", Vsn::V2),
    ] {
        assert_eq!(Vsn::negotiate(Some(v)), Ok(want), "{v}");
    }
}

#[test]
fn vsn_refuses_others() {
    for v in [
        "", "3.0.0", "1.1.0", "2.1.0", "2", "2.0", "2.0.0.0", "v2.0.0", "2.0.x", "1..0",
    ] {
        assert!(
            matches!(
                Vsn::negotiate(Some(v)),
                Err(CodecError::UnsupportedVsn { .. })
            ),
            "{v:?}"
        );
    }
}

#[test]
fn codec_indices_are_stable() {
    assert_eq!(Vsn::V1.codec(), 0);
    assert_eq!(Vsn::V2.codec(), 1);
}

// ---- text, vsn 2.0.0 -------------------------------------------------------

#[test]
fn js_json_encodes() {
    let p = raw(r#"{"foo":1}"#);
    assert_eq!(
        encode_text(Vsn::V2, &out(Some("0"), Some("1"), "t", "e", &p)),
        r#"["0","1","t","e",{"foo":1}]"#
    );
}

#[test]
fn js_json_encodes_missing_refs() {
    let p = raw(r#"{"foo":1}"#);
    assert_eq!(
        encode_text(Vsn::V2, &out(None, None, "t", "e", &p)),
        r#"[null,null,"t","e",{"foo":1}]"#
    );
}

#[test]
fn js_json_decodes() {
    let m = decode_text(Vsn::V2, r#"["0","1","t","e",{"foo":1}]"#).unwrap();
    assert_eq!(m.join_ref.as_deref(), Some("0"));
    assert_eq!(m.r#ref.as_deref(), Some("1"));
    assert_eq!((m.topic.as_str(), m.event.as_str()), ("t", "e"));
    assert_eq!(json_payload(&m), r#"{"foo":1}"#);
}

#[test]
fn js_json_decodes_missing_refs() {
    let m = decode_text(Vsn::V2, r#"[null,null,"t","e",{"foo":1}]"#).unwrap();
    assert_eq!((m.join_ref, m.r#ref), (None, None));
}

#[test]
fn server_v2_msg_json_round_trips() {
    let text = r#"[null,null,"t","e",{"m":1}]"#;
    let m = decode_text(Vsn::V2, text).unwrap();
    let p = raw(json_payload(&m));
    assert_eq!(encode_text(Vsn::V2, &out(None, None, "t", "e", &p)), text);
}

#[test]
fn v2_extra_elements_are_ignored_and_short_arrays_refused() {
    assert!(decode_text(Vsn::V2, r#"["1","2","t","e",{},"extra",[1]]"#).is_ok());
    assert!(matches!(
        decode_text(Vsn::V2, r#"["1","2","t","e"]"#),
        Err(CodecError::Json { vsn: "2.0.0", .. })
    ));
    assert!(decode_text(Vsn::V2, r#"{"topic":"t"}"#).is_err());
}

#[test]
fn numeric_refs_become_strings() {
    let m = decode_text(Vsn::V2, r#"[1,2,"t","e",{}]"#).unwrap();
    assert_eq!(m.join_ref.as_deref(), Some("1"));
    assert_eq!(m.r#ref.as_deref(), Some("2"));
}

#[test]
fn notes_heartbeat_reply_v2() {
    let m = decode_text(Vsn::V2, r#"[null,"2","phoenix","heartbeat",{}]"#).unwrap();
    assert_eq!(
        (m.topic.as_str(), m.event.as_str()),
        ("phoenix", "heartbeat")
    );
    let p = crate::phoenix::wire::reply_payload(
        crate::phoenix::wire::ReplyStatus::Ok,
        &crate::phoenix::wire::empty_object(),
    );
    assert_eq!(
        encode_text(
            Vsn::V2,
            &out(None, m.r#ref.as_deref(), "phoenix", "phx_reply", &p)
        ),
        r#"[null,"2","phoenix","phx_reply",{"status":"ok","response":{}}]"#
    );
}

#[test]
fn strings_are_escaped() {
    let p = raw("{}");
    assert_eq!(
        encode_text(Vsn::V2, &out(None, None, "realtime:a\"b\\c\n", "é", &p)),
        r#"[null,null,"realtime:a\"b\\c\n","é",{}]"#
    );
}

// ---- text, vsn 1.0.0 -------------------------------------------------------

#[test]
fn notes_v1_heartbeat_decodes() {
    let m = decode_text(
        Vsn::V1,
        r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}"#,
    )
    .unwrap();
    assert_eq!(m.r#ref.as_deref(), Some("2"));
    assert_eq!(m.join_ref, None);
    assert_eq!(json_payload(&m), "{}");
}

#[test]
fn v1_ref_must_be_present_but_may_be_null() {
    let m = decode_text(
        Vsn::V1,
        r#"{"topic":"t","event":"e","payload":{},"ref":null}"#,
    )
    .unwrap();
    assert_eq!(m.r#ref, None);
    assert!(decode_text(Vsn::V1, r#"{"topic":"t","event":"e","payload":{}}"#).is_err());
}

#[test]
fn v1_join_ref_and_unknown_keys() {
    let m = decode_text(
        Vsn::V1,
        r#"{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"ref":"3","join_ref":"1","extra":true}"#,
    )
    .unwrap();
    assert_eq!(m.join_ref.as_deref(), Some("1"));
    assert_eq!(
        json_payload(&m),
        r#"{"type":"broadcast","event":"cursor","payload":{"x":1}}"#
    );
}

#[test]
fn notes_v1_broadcast_out_has_no_join_ref() {
    let p = raw(r#"{"type":"broadcast","event":"cursor","payload":{"x":1}}"#);
    assert_eq!(
        encode_text(
            Vsn::V1,
            &out(Some("1"), None, "realtime:room1", "broadcast", &p)
        ),
        r#"{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"ref":null}"#
    );
}

#[test]
fn v1_rejects_binary() {
    let b = Bytes::from_static(b"\x03\x00\x00\x01\x01\x00\x01te{}");
    assert_eq!(
        decode_binary(Vsn::V1, &b).unwrap_err(),
        CodecError::BinaryOnV1
    );
}

// ---- binary kind 3 (client → server) ----------------------------------------

#[test]
fn js_kind3_json_no_metadata() {
    let b = Bytes::from_static(b"\x03\x02\x01\x03\x0a\x00\x01101topuser-event{\"a\":\"b\"}");
    let m = decode_binary(Vsn::V2, &b).unwrap();
    assert_eq!(m.join_ref.as_deref(), Some("10"));
    assert_eq!(m.r#ref.as_deref(), Some("1"));
    assert_eq!((m.topic.as_str(), m.event.as_str()), ("top", "broadcast"));
    assert_eq!(
        user(&m),
        ("user-event", Encoding::Json, None, &b"{\"a\":\"b\"}"[..])
    );
}

#[test]
fn js_kind3_metadata_variants() {
    for (bin, meta) in [
        (&b"\x03\x02\x01\x03\x0a\x0f\x01101topuser-event{\"extra\":\"bit\"}{\"a\":\"b\"}"[..], "{\"extra\":\"bit\"}"),
        (&b"\x03\x02\x01\x03\x0a\x10\x01101topuser-event{\"persist\":true}{\"a\":\"b\"}"[..], "{\"persist\":true}"),
        (
            &b"\x03\x02\x01\x03\x0a\x18\x01101topuser-event{\"persist\":{\"ttl\":3600}}{\"a\":\"b\"}"[..],
            "{\"persist\":{\"ttl\":3600}}",
        ),
    ] {
        let b = Bytes::copy_from_slice(bin);
        let m = decode_binary(Vsn::V2, &b).unwrap();
        let (ev, enc, got_meta, data) = user(&m);
        assert_eq!((ev, enc, got_meta), ("user-event", Encoding::Json, Some(meta)));
        assert_eq!(data, b"{\"a\":\"b\"}");
    }
}

#[test]
fn js_kind3_no_refs() {
    let b = Bytes::from_static(b"\x03\x00\x00\x03\x0a\x00\x01topuser-event{\"a\":\"b\"}");
    let m = decode_binary(Vsn::V2, &b).unwrap();
    assert_eq!((m.join_ref, m.r#ref), (None, None));
}

#[test]
fn js_kind3_binary_payload() {
    for bin in [
        &b"\x03\x02\x01\x03\x0a\x00\x00101topuser-event\x01\x04"[..],
        &b"\x03\x00\x00\x03\x0a\x00\x00topuser-event\x01\x04"[..],
    ] {
        let b = Bytes::copy_from_slice(bin);
        let m = decode_binary(Vsn::V2, &b).unwrap();
        assert_eq!(user(&m), ("user-event", Encoding::Raw, None, &[1u8, 4][..]));
    }
}

#[test]
fn js_kind3_utf8_event_length_is_bytes() {
    let event = "café-🎉";
    let p = UserBroadcastPush {
        join_ref: Some("10".into()),
        r#ref: Some("1".into()),
        topic: "top".into(),
        event: event.into(),
        meta: None,
        encoding: Encoding::Json,
        payload: Bytes::from_static(b"{\"a\":\"b\"}"),
    };
    let b = encode_user_broadcast_push(&p).unwrap();
    assert_eq!(usize::from(b[4]), event.len());
    let m = decode_binary(Vsn::V2, &b).unwrap();
    assert_eq!(user(&m).0, event);
}

#[test]
fn js_kind3_field_limits() {
    let long = "a".repeat(256);
    let base = || UserBroadcastPush {
        join_ref: Some("10".into()),
        r#ref: Some("1".into()),
        topic: "top".into(),
        event: "user-event".into(),
        meta: None,
        encoding: Encoding::Raw,
        payload: Bytes::from_static(b"\x01\x04"),
    };
    type Edit<'a> = Box<dyn Fn(&mut UserBroadcastPush) + 'a>;
    let cases: [(Edit<'_>, &str); 5] = [
        (
            Box::new(|p| p.join_ref = Some(long.clone())),
            "joinRef length 256 exceeds maximum of 255",
        ),
        (
            Box::new(|p| p.r#ref = Some(long.clone())),
            "ref length 256 exceeds maximum of 255",
        ),
        (
            Box::new(|p| p.topic = long.clone()),
            "topic length 256 exceeds maximum of 255",
        ),
        (
            Box::new(|p| p.event = long.clone()),
            "userEvent length 256 exceeds maximum of 255",
        ),
        (
            Box::new(|p| {
                p.meta = Some(raw(&format!("{{\"extraField\":\"{}\"}}", "a".repeat(240))))
            }),
            "metadata length",
        ),
    ];
    for (edit, msg) in cases {
        let mut p = base();
        edit(&mut p);
        let e = encode_user_broadcast_push(&p).unwrap_err();
        assert!(e.to_string().starts_with(msg), "{e}");
    }
}

#[test]
fn server_client_binary_user_broadcast_push() {
    let b = Bytes::from_static(b"\x03\x02\x03\x05\x0a\x00\x0012123topicuser_eventefg");
    let m = decode_binary(Vsn::V2, &b).unwrap();
    assert_eq!(m.join_ref.as_deref(), Some("12"));
    assert_eq!(m.r#ref.as_deref(), Some("123"));
    assert_eq!(m.topic, "topic");
    assert_eq!(user(&m), ("user_event", Encoding::Raw, None, &b"efg"[..]));
}

#[test]
fn server_client_json_user_broadcast_push() {
    let b = Bytes::from_static(b"\x03\x02\x03\x05\x0a\x00\x0112123topicuser_event{\"a\":\"b\"}");
    let m = decode_binary(Vsn::V2, &b).unwrap();
    assert_eq!(
        user(&m),
        ("user_event", Encoding::Json, None, &b"{\"a\":\"b\"}"[..])
    );
}

#[test]
fn server_client_binary_push_with_metadata() {
    let b =
        Bytes::from_static(b"\x03\x02\x03\x05\x0a\x0e\x0012123topicuser_event{\"store\":true}efg");
    let m = decode_binary(Vsn::V2, &b).unwrap();
    assert_eq!(
        user(&m),
        (
            "user_event",
            Encoding::Raw,
            Some("{\"store\":true}"),
            &b"efg"[..]
        )
    );
}

#[test]
fn server_plain_push_kind0_is_refused() {
    // Phoenix's kind-0 push decodes on the server, but realtime-js never sends
    // it and the hub has no binary events besides broadcasts.
    let b = Bytes::from_static(b"\x00\x02\x03\x05\x0512123topiceventefg");
    assert_eq!(
        decode_binary(Vsn::V2, &b).unwrap_err(),
        CodecError::UnknownKind { kind: 0 }
    );
}

#[test]
fn notes_kind3_cursor() {
    let b = Bytes::from_static(b"\x03\x01\x01\x0e\x06\x00\x0113realtime:room1cursor{\"x\":1}");
    let m = decode_binary(Vsn::V2, &b).unwrap();
    assert_eq!(m.topic, "realtime:room1");
    assert_eq!(
        user(&m),
        ("cursor", Encoding::Json, None, &b"{\"x\":1}"[..])
    );
}

#[test]
fn kind3_errors() {
    let cases: [(&[u8], CodecError); 7] = [
        (b"", CodecError::Truncated { need: 1, have: 0 }),
        (b"\x03\x00\x00", CodecError::Truncated { need: 7, have: 3 }),
        (
            b"\x03\x00\x00\x05\x01\x00\x01to",
            CodecError::Truncated { need: 12, have: 9 },
        ),
        (
            b"\x03\x00\x00\x01\x01\x00\x02te",
            CodecError::UnknownEncoding(2),
        ),
        (
            b"\x03\x00\x00\x01\x01\x00\x01\xffe{}",
            CodecError::NotUtf8 { field: "topic" },
        ),
        (
            b"\x03\x00\x00\x01\x01\x02\x00te[]x",
            CodecError::BadMetadata,
        ),
        (
            b"\x03\x00\x00\x01\x01\x00\x01te{",
            CodecError::BadJsonPayload,
        ),
    ];
    for (bin, want) in cases {
        let b = Bytes::copy_from_slice(bin);
        assert_eq!(decode_binary(Vsn::V2, &b).unwrap_err(), want, "{bin:?}");
    }
    let b = Bytes::from_static(b"\x04\x01\x01\x00\x00te");
    assert_eq!(
        decode_binary(Vsn::V2, &b).unwrap_err(),
        CodecError::UnknownKind { kind: 4 }
    );
}

// ---- binary kind 4 (server → client) ----------------------------------------

#[test]
fn server_fastlane_binary_user_broadcast() {
    let b = encode_user_broadcast(
        "topic",
        "user_event",
        Some("{\"replayed\":true}"),
        Encoding::Raw,
        b"efg",
    )
    .unwrap();
    assert_eq!(
        &b[..],
        b"\x04\x05\x0a\x11\x00topicuser_event{\"replayed\":true}efg"
    );
}

#[test]
fn server_fastlane_binary_user_broadcast_no_metadata() {
    let b = encode_user_broadcast("topic", "user_event", None, Encoding::Raw, b"efg").unwrap();
    assert_eq!(&b[..], b"\x04\x05\x0a\x00\x00topicuser_eventefg");
}

#[test]
fn server_fastlane_json_user_broadcast() {
    let b = encode_user_broadcast(
        "topic",
        "user_event",
        Some("{\"replayed\":true}"),
        Encoding::Json,
        b"{\"a\":\"b\"}",
    )
    .unwrap();
    assert_eq!(
        &b[..],
        b"\x04\x05\x0a\x11\x01topicuser_event{\"replayed\":true}{\"a\":\"b\"}"
    );
    let b = encode_user_broadcast(
        "topic",
        "user_event",
        None,
        Encoding::Json,
        b"{\"a\":\"b\"}",
    )
    .unwrap();
    assert_eq!(&b[..], b"\x04\x05\x0a\x00\x01topicuser_event{\"a\":\"b\"}");
}

#[test]
fn server_fastlane_oversized_headers() {
    let long = "t".repeat(256);
    assert_eq!(
        encode_user_broadcast(&long, "e", None, Encoding::Json, b"{}").unwrap_err(),
        CodecError::FieldTooLong {
            field: "topic",
            len: 256
        }
    );
    assert_eq!(
        encode_user_broadcast("t", &long, None, Encoding::Json, b"{}").unwrap_err(),
        CodecError::FieldTooLong {
            field: "userEvent",
            len: 256
        }
    );
    let meta = format!("{{\"k\":\"{}\"}}", "e".repeat(256));
    assert!(matches!(
        encode_user_broadcast("t", "e", Some(&meta), Encoding::Json, b"{}").unwrap_err(),
        CodecError::FieldTooLong {
            field: "metadata",
            ..
        }
    ));
}

#[test]
fn js_decodes_kind4_fixtures() {
    type Row<'a> = (&'a [u8], Option<&'a str>, Encoding, &'a [u8]);
    let cases: [Row<'_>; 4] = [
        (
            b"\x04\x03\x0a\x00\x01topuser-event{\"a\":\"b\"}",
            None,
            Encoding::Json,
            b"{\"a\":\"b\"}",
        ),
        (
            b"\x04\x03\x0a\x11\x01topuser-event{\"replayed\":true}{\"a\":\"b\"}",
            Some("{\"replayed\":true}"),
            Encoding::Json,
            b"{\"a\":\"b\"}",
        ),
        (
            b"\x04\x03\x0a\x00\x00topuser-event\x01\x04",
            None,
            Encoding::Raw,
            b"\x01\x04",
        ),
        (
            b"\x04\x03\x0a\x11\x00topuser-event{\"replayed\":true}\x01\x04",
            Some("{\"replayed\":true}"),
            Encoding::Raw,
            b"\x01\x04",
        ),
    ];
    for (bin, meta, enc, payload) in cases {
        let b = Bytes::copy_from_slice(bin);
        let d = decode_user_broadcast(&b).unwrap();
        assert_eq!(d.topic, "top");
        assert_eq!(d.event, "user-event");
        assert_eq!(d.meta.as_deref(), meta);
        assert_eq!(d.encoding, enc);
        assert_eq!(&d.payload[..], payload);
        // And our encoder produces exactly these bytes.
        assert_eq!(
            encode_user_broadcast("top", "user-event", meta, enc, payload).unwrap(),
            b
        );
    }
}

#[test]
fn notes_kind4_cursor() {
    let b = encode_user_broadcast(
        "realtime:room1",
        "cursor",
        None,
        Encoding::Json,
        b"{\"x\":1}",
    )
    .unwrap();
    assert_eq!(&b[..], b"\x04\x0e\x06\x00\x01realtime:room1cursor{\"x\":1}");
}

#[test]
fn kind3_round_trips() {
    let b = Bytes::from_static(
        b"\x03\x02\x01\x03\x0a\x0f\x01101topuser-event{\"extra\":\"bit\"}{\"a\":\"b\"}",
    );
    let p = binary::decode_user_broadcast_push(&b).unwrap();
    assert_eq!(encode_user_broadcast_push(&p).unwrap(), b);
}
