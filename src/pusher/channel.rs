//! Pusher channel names: validation and kind classification.
//!
//! Owns: the naming rules. Receives: channel names from subscribe frames and
//! REST bodies. Hands on: a [`ChannelKind`] (access rule + cache flag) or a
//! typed [`ChannelNameError`].
//!
//! Rules: 1 to [`MAX_LEN`] characters from `[A-Za-z0-9_\-=@,.;]`, or exactly
//! `#server-to-user-{id}` (the id follows the same alphabet). Prefixes need
//! their dash: `privatefoo` is public (Reverb treats it as private). Pusher's
//! own limit is 164 characters; we accept up to 200 like Soketi and Sockudo so
//! apps moving from them keep working.

/// Longest accepted channel name, in bytes (all accepted bytes are ASCII).
pub const MAX_LEN: usize = 200;

/// Prefix of the per-user channel a signed-in connection may subscribe to.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// Who may subscribe, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no auth.
    Public,
    /// `private-`: channel auth signature required.
    Private,
    /// `private-encrypted-`: like private; payloads are end-to-end encrypted
    /// and client events are refused.
    PrivateEncrypted,
    /// `presence-`: auth with `channel_data`, members tracked.
    Presence,
    /// `#server-to-user-{id}`: only the connection signed in as `id`.
    ServerToUser,
}

/// A channel's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelKind {
    /// The access rule.
    pub access: Access,
    /// A `cache-` variant: the last event is kept and replayed.
    pub cache: bool,
}

impl ChannelKind {
    /// Whether subscribing needs an `auth` signature.
    pub fn needs_auth(self) -> bool {
        !matches!(self.access, Access::Public | Access::ServerToUser)
    }

    /// Whether client events (`client-*`) may be sent on it at all.
    pub fn allows_client_events(self) -> bool {
        matches!(self.access, Access::Private | Access::Presence)
    }
}

/// Why a channel name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    /// Empty name.
    #[error("channel name is empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("channel name is {len} characters, the limit is {MAX_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A character outside the allowed alphabet.
    #[error("channel name contains invalid character {ch:?} at {at}")]
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

/// Validates `name` and classifies it.
pub fn classify(name: &str) -> Result<ChannelKind, ChannelNameError> {
    if name.is_empty() {
        return Err(ChannelNameError::Empty);
    }
    if name.len() > MAX_LEN {
        return Err(ChannelNameError::TooLong { len: name.len() });
    }
    let (checked, offset) = match name.strip_prefix(SERVER_TO_USER_PREFIX) {
        Some("") => return Err(ChannelNameError::Empty),
        Some(rest) => (rest, SERVER_TO_USER_PREFIX.len()),
        None => (name, 0),
    };
    if let Some((at, ch)) = checked.char_indices().find(|&(_, c)| !allowed(c)) {
        return Err(ChannelNameError::InvalidChar {
            ch,
            at: at + offset,
        });
    }
    Ok(kind_of(name))
}

/// The kind of an (already valid) name.
pub fn kind_of(name: &str) -> ChannelKind {
    const TABLE: &[(&str, Access, bool)] = &[
        (SERVER_TO_USER_PREFIX, Access::ServerToUser, false),
        ("private-encrypted-cache-", Access::PrivateEncrypted, true),
        ("private-encrypted-", Access::PrivateEncrypted, false),
        ("private-cache-", Access::Private, true),
        ("private-", Access::Private, false),
        ("presence-cache-", Access::Presence, true),
        ("presence-", Access::Presence, false),
        ("cache-", Access::Public, true),
    ];
    for (prefix, access, cache) in TABLE {
        if name.starts_with(prefix) {
            return ChannelKind {
                access: *access,
                cache: *cache,
            };
        }
    }
    ChannelKind {
        access: Access::Public,
        cache: false,
    }
}

/// The user id of a `#server-to-user-{id}` channel.
pub fn server_to_user_id(name: &str) -> Option<&str> {
    name.strip_prefix(SERVER_TO_USER_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(access: Access, cache: bool) -> ChannelKind {
        ChannelKind { access, cache }
    }

    #[test]
    fn kinds() {
        let cases = [
            ("news", k(Access::Public, false)),
            ("privatefoo", k(Access::Public, false)),
            ("cache-news", k(Access::Public, true)),
            ("private-App.Models.User.1", k(Access::Private, false)),
            ("private-cache-x", k(Access::Private, true)),
            ("private-encrypted-x", k(Access::PrivateEncrypted, false)),
            (
                "private-encrypted-cache-x",
                k(Access::PrivateEncrypted, true),
            ),
            ("presence-room", k(Access::Presence, false)),
            ("presence-cache-room", k(Access::Presence, true)),
            ("#server-to-user-42", k(Access::ServerToUser, false)),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name), Ok(want), "{name}");
        }
    }

    #[test]
    fn alphabet_and_length() {
        assert!(classify("a-b_c=d@e,f.g;h").is_ok());
        assert_eq!(classify(""), Err(ChannelNameError::Empty));
        assert_eq!(classify("#server-to-user-"), Err(ChannelNameError::Empty));
        assert_eq!(
            classify("a b"),
            Err(ChannelNameError::InvalidChar { ch: ' ', at: 1 })
        );
        assert_eq!(
            classify("#other"),
            Err(ChannelNameError::InvalidChar { ch: '#', at: 0 })
        );
        assert_eq!(
            classify("#server-to-user-a#"),
            Err(ChannelNameError::InvalidChar { ch: '#', at: 17 })
        );
        assert!(classify("é").is_err());
        assert!(classify(&"a".repeat(MAX_LEN)).is_ok());
        assert_eq!(
            classify(&"a".repeat(MAX_LEN + 1)),
            Err(ChannelNameError::TooLong { len: MAX_LEN + 1 })
        );
    }

    #[test]
    fn rules() {
        assert!(kind_of("private-x").needs_auth());
        assert!(kind_of("presence-x").needs_auth());
        assert!(kind_of("private-encrypted-x").needs_auth());
        assert!(!kind_of("x").needs_auth());
        assert!(!kind_of("#server-to-user-1").needs_auth());
        assert!(kind_of("private-x").allows_client_events());
        assert!(kind_of("presence-cache-x").allows_client_events());
        assert!(!kind_of("private-encrypted-x").allows_client_events());
        assert!(!kind_of("x").allows_client_events());
        assert_eq!(server_to_user_id("#server-to-user-7"), Some("7"));
    }
}
