//! Signature test vectors. The expected hex values were computed with
//! Python's `hmac`/`hashlib`; the private-channel and REST ones equal the
//! worked examples in Pusher's authentication and REST API docs.

use super::*;

const CREDS: Credentials<'static> = Credentials {
    key: "278d425bdf160c739803",
    secret: "7ad3773142a6692b25b8",
};

#[test]
fn private_channel_doc_example() {
    let want =
        "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    assert_eq!(
        channel_token(CREDS, "1234.1234", "private-foobar", None),
        want
    );
    assert_eq!(
        verify_channel(CREDS, "1234.1234", "private-foobar", None, Some(want)),
        Ok(())
    );
}

#[test]
fn presence_channel_vector() {
    let data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
    let want =
        "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80";
    assert_eq!(
        channel_token(CREDS, "1234.1234", "presence-foobar", Some(data)),
        want
    );
    assert_eq!(
        verify_channel(
            CREDS,
            "1234.1234",
            "presence-foobar",
            Some(data),
            Some(want)
        ),
        Ok(())
    );
    // channel_data is part of the signature: a changed byte fails.
    let other = r#"{"user_id":11,"user_info":{"name":"Mr. Channels"}}"#;
    assert!(matches!(
        verify_channel(
            CREDS,
            "1234.1234",
            "presence-foobar",
            Some(other),
            Some(want)
        ),
        Err(AuthError::BadSignature { .. })
    ));
}

#[test]
fn channel_auth_failures() {
    let good = channel_token(CREDS, "1.2", "private-a", None);
    assert_eq!(
        verify_channel(CREDS, "1.2", "private-a", None, None),
        Err(AuthError::Missing)
    );
    assert_eq!(
        verify_channel(CREDS, "1.2", "private-a", None, Some("nocolon")),
        Err(AuthError::Malformed)
    );
    let wrong_key = good.replacen("278d", "0000", 1);
    assert_eq!(
        verify_channel(CREDS, "1.2", "private-a", None, Some(&wrong_key)),
        Err(AuthError::WrongKey)
    );
    assert_eq!(
        verify_channel(CREDS, "1.3", "private-a", None, Some(&good)),
        Err(AuthError::BadSignature {
            string_to_sign: "1.3:private-a".into()
        })
    );
    assert!(
        verify_channel(
            CREDS,
            "1.2",
            "private-a",
            None,
            Some("278d425bdf160c739803:zz")
        )
        .is_err()
    );
}

#[test]
fn user_signin_vector() {
    let data = r#"{"id":"12345"}"#;
    let want =
        "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
    assert_eq!(user_token(CREDS, "1234.1234", data), want);
    assert_eq!(verify_user(CREDS, "1234.1234", data, Some(want)), Ok(()));
    assert!(verify_user(CREDS, "1234.1235", data, Some(want)).is_err());
}

#[test]
fn webhook_vector() {
    let body = br#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test_channel"}]}"#;
    assert_eq!(
        webhook_signature(CREDS.secret, body),
        "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa"
    );
}

const DOC_BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
const DOC_QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

fn doc_req(query: &str) -> RestRequest<'_> {
    RestRequest {
        method: "POST",
        path: "/apps/3/events",
        query,
        body: DOC_BODY.as_bytes(),
    }
}

#[test]
fn rest_doc_example() {
    assert_eq!(verify_rest(CREDS, doc_req(DOC_QUERY), 1353088179), Ok(()));
    // Within the window on both sides.
    assert_eq!(
        verify_rest(CREDS, doc_req(DOC_QUERY), 1353088179 + 600),
        Ok(())
    );
    assert_eq!(
        verify_rest(CREDS, doc_req(DOC_QUERY), 1353088179 - 600),
        Ok(())
    );
}

#[test]
fn rest_rejections() {
    assert_eq!(
        verify_rest(CREDS, doc_req(DOC_QUERY), 1353088179 + 601),
        Err(RestAuthError::Expired { skew: 601 })
    );
    let mut body_req = doc_req(DOC_QUERY);
    body_req.body = b"{}";
    assert_eq!(
        verify_rest(CREDS, body_req, 1353088179),
        Err(RestAuthError::BodyMd5)
    );
    let no_md5 = DOC_QUERY.replace("&body_md5=ec365a775a4cd0599faeb73354201b6f", "");
    assert_eq!(
        verify_rest(CREDS, doc_req(&no_md5), 1353088179),
        Err(RestAuthError::BodyMd5)
    );
    let other_key = DOC_QUERY.replace("auth_key=278d", "auth_key=000d");
    assert_eq!(
        verify_rest(CREDS, doc_req(&other_key), 1353088179),
        Err(RestAuthError::WrongKey)
    );
    let no_sig = DOC_QUERY
        .split("&auth_signature")
        .next()
        .unwrap_or_default();
    assert_eq!(
        verify_rest(CREDS, doc_req(no_sig), 1353088179),
        Err(RestAuthError::MissingParam("auth_signature"))
    );
    let mut prefixed = doc_req(DOC_QUERY);
    prefixed.path = "/ws/apps/3/events";
    assert!(matches!(
        verify_rest(CREDS, prefixed, 1353088179),
        Err(RestAuthError::BadSignature { .. })
    ));
    let bad_ts = DOC_QUERY.replace("1353088179", "soon");
    assert_eq!(
        verify_rest(CREDS, doc_req(&bad_ts), 0),
        Err(RestAuthError::BadTimestamp)
    );
    assert_eq!(
        verify_rest(CREDS, doc_req("a=%zz"), 0),
        Err(RestAuthError::BadQuery)
    );
}

#[test]
fn rest_query_is_signed_decoded_sorted_and_lowercased() {
    let params = [
        ("info", "user_count,subscription_count"),
        ("filter_by_prefix", "presence-"),
    ];
    let q = sign_rest(CREDS, "GET", "/apps/3/channels", &params, b"", 1000);
    assert!(q.contains("info=user_count%2Csubscription_count"));
    let req = RestRequest {
        method: "GET",
        path: "/apps/3/channels",
        query: &q,
        body: b"",
    };
    assert_eq!(verify_rest(CREDS, req, 1000), Ok(()));
    // Upper-case keys are lowercased before signing.
    let upper = q.replace("info=", "INFO=");
    let req = RestRequest {
        query: &upper,
        ..req
    };
    assert_eq!(verify_rest(CREDS, req, 1000), Ok(()));
}

#[test]
fn socket_ids() {
    for _ in 0..100 {
        let id = socket_id();
        assert!(is_socket_id(&id), "{id}");
    }
    assert!(!is_socket_id("1."));
    assert!(!is_socket_id("a.1"));
    assert!(!is_socket_id("12"));
}

#[test]
fn url_decoding() {
    assert_eq!(url_decode("a%2Cb+c").as_deref(), Some("a,b c"));
    assert_eq!(url_decode("%"), None);
    assert_eq!(url_decode("%ff"), None);
}
