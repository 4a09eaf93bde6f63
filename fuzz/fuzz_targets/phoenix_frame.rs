//! Fuzzes the Phoenix (Supabase Realtime) serializer: every decoder must
//! either refuse the input with a typed error or produce a message that
//! re-encodes to something that decodes to the same message (and, for the
//! binary frames, to the very same bytes).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use portico::phoenix::codec::{
    Outgoing, Payload, Vsn, decode_binary, decode_text, decode_user_broadcast, encode_text,
    encode_user_broadcast, encode_user_broadcast_push, UserBroadcastPush,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = Bytes::copy_from_slice(rest);
    match mode % 4 {
        0 | 1 => {
            let vsn = if mode % 4 == 0 { Vsn::V1 } else { Vsn::V2 };
            let Ok(text) = std::str::from_utf8(rest) else { return };
            let Ok(m) = decode_text(vsn, text) else { return };
            let Payload::Json(p) = &m.payload else { unreachable!("text decodes to JSON") };
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
            let Payload::Json(p2) = &again.payload else { unreachable!() };
            assert_eq!(p2.get(), p.get());
        }
        2 => {
            let Ok(m) = decode_binary(Vsn::V2, &bytes) else { return };
            let Payload::UserBroadcast { event, encoding, meta, data } = m.payload else {
                unreachable!("binary decodes to a user broadcast")
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
            // Metadata is kept as JSON text with surrounding whitespace
            // trimmed, so compare after one normalising pass.
            let again = decode_binary(Vsn::V2, &enc).expect("our own encoding decodes");
            assert_eq!(again.topic, push.topic);
            assert_eq!(again.join_ref, push.join_ref);
            assert_eq!(again.r#ref, push.r#ref);
            let Payload::UserBroadcast { event, encoding, meta, data } = again.payload else {
                unreachable!()
            };
            assert_eq!(event, push.event);
            assert_eq!(encoding, push.encoding);
            assert_eq!(meta.as_deref().map(|m| m.get()), push.meta.as_deref().map(|m| m.get()));
            assert_eq!(data, push.payload);
            if push.meta.is_none() {
                assert_eq!(enc, bytes);
            }
        }
        _ => {
            let Ok(b) = decode_user_broadcast(&bytes) else { return };
            let enc = encode_user_broadcast(&b.topic, &b.event, b.meta.as_deref(), b.encoding, &b.payload)
                .expect("decoded fields fit");
            assert_eq!(enc, bytes);
        }
    }
});
