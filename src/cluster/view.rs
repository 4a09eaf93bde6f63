//! Cluster-wide answers for the REST API: channels, their counts and
//! presence members, summed over every node from Redis.
//!
//! Owns: the read queries. Receives: app and channel names from the
//! front. Hands on: the hub's own value types ([`ChannelInfo`],
//! [`Members`]); while Redis is away, the local node's answer (logged).

use std::sync::Arc;

use redis::RedisError;
use redis::aio::MultiplexedConnection;

use super::Cluster;
use super::keys::Keys;
use super::state;
use crate::hub::{ChannelInfo, Members};

fn sum(v: &[i64]) -> usize {
    v.iter().copied().filter(|n| *n > 0).sum::<i64>() as usize
}

async fn info(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    app: &str,
    channel: &str,
) -> Result<Option<ChannelInfo>, RedisError> {
    let (subs, users): (Vec<i64>, usize) = redis::pipe()
        .cmd("HVALS")
        .arg(k.subs(app, channel))
        .cmd("HLEN")
        .arg(k.users(app, channel))
        .query_async(conn)
        .await?;
    let n = sum(&subs);
    Ok((n > 0).then(|| ChannelInfo {
        name: Arc::from(channel),
        subscription_count: n,
        user_count: users,
    }))
}

async fn list(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    app: &str,
    prefix: &str,
) -> Result<Vec<ChannelInfo>, RedisError> {
    let names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(k.channels(app))
        .query_async(conn)
        .await?;
    let mut out = Vec::new();
    for name in names.iter().filter(|n| n.starts_with(prefix)) {
        if let Some(ci) = info(conn, k, app, name).await? {
            out.push(ci);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

impl Cluster {
    fn view_conn(&self) -> Option<MultiplexedConnection> {
        self.state_conn.lock().clone()
    }

    fn local_app(&self, app: &str) -> Option<Arc<crate::hub::AppHub>> {
        self.hub.get()?.upgrade()?.existing_app(app)
    }

    fn unavailable(&self, e: Option<&RedisError>) {
        match e {
            Some(e) => {
                tracing::debug!(error = %e, "cluster: REST view from Redis failed; answering for this node")
            }
            None => tracing::debug!("cluster: Redis is away; REST view answers for this node"),
        }
    }

    /// The channel's counts over every node (`None`: not occupied).
    pub async fn channel_info(&self, app: &str, channel: &str) -> Option<ChannelInfo> {
        if let Some(mut c) = self.view_conn() {
            match info(&mut c, &self.keys, app, channel).await {
                Ok(i) => return i,
                Err(e) => self.unavailable(Some(&e)),
            }
        } else {
            self.unavailable(None);
        }
        self.local_app(app)?.channel_info(channel)
    }

    /// Occupied channels whose name starts with `prefix`, over every node.
    pub async fn channels(&self, app: &str, prefix: &str) -> Vec<ChannelInfo> {
        if let Some(mut c) = self.view_conn() {
            match list(&mut c, &self.keys, app, prefix).await {
                Ok(v) => return v,
                Err(e) => self.unavailable(Some(&e)),
            }
        } else {
            self.unavailable(None);
        }
        self.local_app(app)
            .map(|a| a.channels(prefix))
            .unwrap_or_default()
    }

    /// Presence members of the channel over every node.
    pub async fn members(&self, app: &str, channel: &str) -> Members {
        if let Some(mut c) = self.view_conn() {
            match state::members(&mut c, &self.keys, app, channel).await {
                Ok(m) => return m,
                Err(e) => self.unavailable(Some(&e)),
            }
        } else {
            self.unavailable(None);
        }
        self.local_app(app)
            .map(|a| a.members(channel))
            .unwrap_or_default()
    }
}
