//! The properties the `phoenix_frame` and `phoenix_binary` fuzz targets
//! check, kept in the library so `tests/fuzz_corpus.rs` replays the corpus
//! through the same code on stable Rust.
//!
//! Owns: the round-trip rules of the serializer. Receives: any bytes.
//! Hands on: nothing; it panics when a rule breaks.

use bytes::Bytes;

use super::{
    CodecError, Outgoing, Payload, UserBroadcastPush, Vsn, decode_binary, decode_text,
    decode_user_broadcast, encode_text, encode_user_broadcast, encode_user_broadcast_push,
};

/// Checks one frame; the first byte picks the decoder: v1 text, v2 text,
/// a v2 binary push (kind 3), a binary broadcast (kind 4). Every decoder
/// either refuses the input with a typed error or produces a message that
/// re-encodes to something that decodes to the same message (and, for the
/// binary frames, to the very same bytes).
pub fn check_frame(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check_text(Vsn::V1, rest),
        1 => check_text(Vsn::V2, rest),
        2 => check_push(&Bytes::copy_from_slice(rest)),
        _ => check_broadcast(&Bytes::copy_from_slice(rest)),
    }
}

/// Checks one binary frame with both binary decoders, and that v1 refuses
/// binary frames outright.
pub fn check_binary(data: &Bytes) {
    assert!(matches!(
        decode_binary(Vsn::V1, data),
        Err(CodecError::BinaryOnV1)
    ));
    check_push(data);
    check_broadcast(data);
}

fn check_text(vsn: Vsn, rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let m = match decode_text(vsn, text) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let Payload::Json(p) = &m.payload else {
        panic!("text decodes to JSON");
    };
    let out = encode_text(
        vsn,
        &Outgoing {
            join_ref: m.join_ref.as_deref(),
            r#ref: m.r#ref.as_deref(),
            topic: &m.topic,
            event: &m.event,
            payload: p,
        },
    );
    let again = decode_text(vsn, &out).expect("our own encoding decodes");
    assert_eq!(again.topic, m.topic);
    assert_eq!(again.event, m.event);
    assert_eq!(again.r#ref, m.r#ref);
    if vsn == Vsn::V2 {
        assert_eq!(again.join_ref, m.join_ref);
    }
    let Payload::Json(p2) = &again.payload else {
        panic!("text decodes to JSON");
    };
    assert_eq!(p2.get(), p.get());
}

fn check_push(bytes: &Bytes) {
    let m = match decode_binary(Vsn::V2, bytes) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let Payload::UserBroadcast {
        event,
        encoding,
        meta,
        data,
    } = m.payload
    else {
        panic!("binary decodes to a user broadcast");
    };
    let push = UserBroadcastPush {
        join_ref: m.join_ref,
        r#ref: m.r#ref,
        topic: m.topic,
        event,
        meta,
        encoding,
        payload: data,
    };
    let enc = encode_user_broadcast_push(&push).expect("decoded fields fit");
    // Metadata is kept as JSON text with surrounding whitespace trimmed,
    // so compare after one normalising pass.
    let again = decode_binary(Vsn::V2, &enc).expect("our own encoding decodes");
    assert_eq!(again.topic, push.topic);
    assert_eq!(again.join_ref, push.join_ref);
    assert_eq!(again.r#ref, push.r#ref);
    let Payload::UserBroadcast {
        event,
        encoding,
        meta,
        data,
    } = again.payload
    else {
        panic!("binary decodes to a user broadcast");
    };
    assert_eq!(event, push.event);
    assert_eq!(encoding, push.encoding);
    assert_eq!(
        meta.as_deref().map(|m| m.get()),
        push.meta.as_deref().map(|m| m.get())
    );
    assert_eq!(data, push.payload);
    if push.meta.is_none() {
        assert_eq!(&enc, bytes);
    }
}

fn check_broadcast(bytes: &Bytes) {
    let b = match decode_user_broadcast(bytes) {
        Ok(b) => b,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let enc = encode_user_broadcast(
        &b.topic,
        &b.event,
        b.meta.as_deref(),
        b.encoding,
        &b.payload,
    )
    .expect("decoded fields fit");
    assert_eq!(&enc, bytes);
}
