use std::sync::Arc;

use bytes::Bytes;

use super::*;

fn frames_eq(a: &Frames, b: &Frames) -> bool {
    match (a, b) {
        (Frames::One(x), Frames::One(y)) => x == y,
        (Frames::PerCodec(x), Frames::PerCodec(y)) => x == y,
        _ => false,
    }
}

fn round_trip(msg: &Message<'_>) {
    let bytes = encode("node-a", 7, "app-1", msg).unwrap();
    let e = decode(&bytes).unwrap();
    assert_eq!((e.seq, e.node, e.app), (7, "node-a", "app-1"));
    let back = original(&e);
    assert_eq!(back.channel, msg.channel);
    assert_eq!(back.event, msg.event);
    assert_eq!(back.data, msg.data);
    assert_eq!(back.kind, msg.kind);
    assert_eq!(back.except, msg.except);
    assert_eq!(back.origin, msg.origin);
    assert!(frames_eq(back.frames, msg.frames));
    assert_eq!(e.message().origin, Origin::Node("node-a"));
    // Every shorter prefix is refused, never a panic.
    for n in 0..bytes.len() {
        assert!(decode(&bytes.slice(..n)).is_err(), "prefix {n}");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(
        decode(&Bytes::from(longer)).unwrap_err(),
        DecodeError::Trailing(1)
    );
}

#[test]
fn pusher_rest_and_client_events_round_trip() {
    let data = Bytes::from_static(b"{\"a\":1}");
    let frames = Frames::One(Frame::from("{\"event\":\"e\"}".to_string()));
    round_trip(&Message {
        channel: "private-chat",
        event: "client-typing",
        data: &data,
        kind: DataKind::Json,
        except: Some("123.456"),
        origin: Origin::Socket("123.456"),
        frames: &frames,
    });
    round_trip(&Message {
        channel: "news",
        event: "",
        data: &Bytes::new(),
        kind: DataKind::Text,
        except: None,
        origin: Origin::Rest,
        frames: &frames,
    });
}

#[test]
fn per_codec_frames_round_trip() {
    let data = Bytes::from_static(&[0, 159, 146, 150]);
    let frames = Frames::PerCodec(Arc::from(vec![
        Some(Frame::from("[null,null,\"t\"]".to_string())),
        None,
        Some(Frame::Binary(Bytes::from_static(&[4, 1, 2, 0xff]))),
    ]));
    round_trip(&Message {
        channel: "realtime:room",
        event: "cursor",
        data: &data,
        kind: DataKind::Binary,
        except: None,
        origin: Origin::Bridge,
        frames: &frames,
    });
}

#[test]
fn node_messages_and_oversized_fields_are_not_encoded() {
    let data = Bytes::new();
    let frames = Frames::One(Frame::from("x".to_string()));
    let msg = Message {
        channel: "c",
        event: "e",
        data: &data,
        kind: DataKind::Text,
        except: None,
        origin: Origin::Node("other"),
        frames: &frames,
    };
    assert_eq!(
        encode("n", 1, "a", &msg).unwrap_err(),
        EncodeError::FromNode
    );
    let long = "x".repeat(300);
    let msg = Message {
        origin: Origin::Rest,
        ..msg
    };
    assert_eq!(
        encode(&long, 1, "a", &msg).unwrap_err(),
        EncodeError::TooLong { field: "node" }
    );
}

#[test]
fn malformed_input_is_refused() {
    let data = Bytes::new();
    let frames = Frames::One(Frame::from("x".to_string()));
    let msg = Message {
        channel: "c",
        event: "e",
        data: &data,
        kind: DataKind::Text,
        except: None,
        origin: Origin::Rest,
        frames: &frames,
    };
    let good = encode("n", 1, "a", &msg).unwrap().to_vec();
    let with = |i: usize, b: u8| {
        let mut v = good.clone();
        v[i] = b;
        decode(&Bytes::from(v)).map(|_| ()).unwrap_err()
    };
    assert_eq!(with(0, 2), DecodeError::Version(2));
    assert_eq!(with(1, 3), DecodeError::Flags(3));
    assert_eq!(with(1, 0b1100), DecodeError::Flags(0b1100));
    assert_eq!(with(1, 0x80), DecodeError::Flags(0x80));
    // The node id's first byte (after version, flags, seq, length).
    assert_eq!(with(11, 0xff), DecodeError::Utf8("node"));
    let t = good.len() - 6; // the frame type byte
    assert_eq!(with(t, 9), DecodeError::FrameType(9));
    assert_eq!(with(good.len() - 1, 0xff), DecodeError::Utf8("frame"));
    assert_eq!(decode(&Bytes::new()).unwrap_err(), DecodeError::Truncated);
}

#[test]
fn the_senders_own_exclusion_stays_on_its_node() {
    let data = Bytes::new();
    let frames = Frames::One(Frame::from("x".to_string()));
    let msg = Message {
        channel: "realtime:room",
        event: "cursor",
        data: &data,
        kind: DataKind::Json,
        except: Some("phx.5"),
        origin: Origin::Socket("phx.5"),
        frames: &frames,
    };
    let bytes = encode("n", 1, "supabase", &msg).unwrap();
    let e = decode(&bytes).unwrap();
    assert_eq!(e.message().except, None);
    assert_eq!(original(&e).except, Some("phx.5"));
    // A REST publish excluding some socket keeps it on every node.
    let msg = Message {
        except: Some("1.2"),
        origin: Origin::Rest,
        ..msg
    };
    let bytes = encode("n", 2, "app", &msg).unwrap();
    assert_eq!(decode(&bytes).unwrap().message().except, Some("1.2"));
}
