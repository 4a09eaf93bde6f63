//! The names of the cluster's Redis keys, all under `{prefix}:`.
//!
//! Owns: the key layout (documented in the module root). Receives: the
//! prefix, app ids, hub channel names and node ids. Hands on: key strings
//! to the state task, the reaper and the REST views.

/// Key builder for one deployment's prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: std::sync::Arc<str>,
}

impl Keys {
    pub(crate) fn new(prefix: std::sync::Arc<str>) -> Keys {
        Keys { prefix }
    }

    /// A node's lease (`SET … PX lease`).
    pub(crate) fn lease(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// The set of every node that ever held state (reaped ones leave it).
    pub(crate) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// The lock a reaper takes on a dead node (`SET NX PX`).
    pub(crate) fn reap(&self, node: &str) -> String {
        format!("{}:reap:{node}", self.prefix)
    }

    /// The set of `{app}\n{channel}` a node holds fields of.
    pub(crate) fn held(&self, node: &str) -> String {
        format!("{}:held:{node}", self.prefix)
    }

    /// Hash node → subscription count on that node.
    pub(crate) fn subs(&self, app: &str, channel: &str) -> String {
        format!("{}:subs:{app}:{channel}", self.prefix)
    }

    /// Hash `{node}|{user}` → the user's info (one field per node holding
    /// the user).
    pub(crate) fn presence(&self, app: &str, channel: &str) -> String {
        format!("{}:presence:{app}:{channel}", self.prefix)
    }

    /// Hash user → number of nodes holding the user (a member while > 0).
    pub(crate) fn users(&self, app: &str, channel: &str) -> String {
        format!("{}:users:{app}:{channel}", self.prefix)
    }

    /// Hash `{node}|{id}` → a front's presence entry (Phoenix metas).
    pub(crate) fn entries(&self, app: &str, channel: &str) -> String {
        format!("{}:entries:{app}:{channel}", self.prefix)
    }

    /// Set by the reaper of a node (with a TTL): the node, if it was alive
    /// after all, announces its state again when it sees this.
    pub(crate) fn reaped(&self, node: &str) -> String {
        format!("{}:reaped:{node}", self.prefix)
    }

    /// Set of the app's occupied channels (cluster-wide).
    pub(crate) fn channels(&self, app: &str) -> String {
        format!("{}:channels:{app}", self.prefix)
    }
}

/// The `held` set's entry for a channel of an app.
pub(crate) fn held_entry(app: &str, channel: &str) -> String {
    format!("{app}\n{channel}")
}

/// The app and channel of a `held` entry.
pub(crate) fn split_held(entry: &str) -> Option<(&str, &str)> {
    entry.split_once('\n')
}

/// The presence field of `user` on `node`.
pub(crate) fn presence_field(node: &str, user: &str) -> String {
    format!("{node}|{user}")
}

/// The user of a presence field (node ids never hold `|`).
pub(crate) fn field_user(field: &str) -> Option<&str> {
    field.split_once('|').map(|(_, u)| u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_entries_round_trip() {
        assert_eq!(field_user(&presence_field("ab12", "u|1")), Some("u|1"));
        assert_eq!(
            split_held(&held_entry("1", "presence-x")),
            Some(("1", "presence-x"))
        );
        let k = Keys::new("p".into());
        assert_eq!(k.subs("1", "news"), "p:subs:1:news");
        assert_eq!(k.lease("n"), "p:node:n");
    }
}
