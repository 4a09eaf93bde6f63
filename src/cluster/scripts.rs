//! The Lua scripts that take the cluster's first-join / last-leave
//! decisions atomically inside Redis, so each is taken exactly once
//! whichever nodes race.
//!
//! Owns: the script texts and their calls. Receives: keys ([`Keys`]) and
//! the node's values from the state task and the reaper. Hands on: the
//! decision each script took ([`Occupancy`], added/removed, reaped).

use redis::RedisError;
use redis::aio::MultiplexedConnection;

use super::keys::{self, Keys};

/// Sums a hash's integer values.
const SUM: &str = r"
local function sum(k)
  local t = 0
  for _, v in ipairs(redis.call('HVALS', k)) do t = t + tonumber(v) end
  return t
end
";

/// KEYS: subs, channels, held. ARGV: node, count, channel, held entry.
/// Returns 1 when the cluster-wide sum went 0 → >0, -1 when >0 → 0.
const COUNT: &str = r"
local before = sum(KEYS[1])
local n = tonumber(ARGV[2])
if n > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], n)
  redis.call('SADD', KEYS[3], ARGV[4])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[4])
end
local after = sum(KEYS[1])
if before == 0 and after > 0 then redis.call('SADD', KEYS[2], ARGV[3]) return 1 end
if before > 0 and after == 0 then redis.call('SREM', KEYS[2], ARGV[3]) return -1 end
return 0
";

/// KEYS: presence, users, held. ARGV: field, info, user, held entry.
/// Returns 1 when this made the user a member (no node held it before).
const JOIN: &str = r"
redis.call('SADD', KEYS[3], ARGV[4])
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[3], 1) == 1 then return 1 end
return 0
";

/// KEYS: presence, users. ARGV: field, user. Returns 1 when this was the
/// last node holding the user.
const LEAVE: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  return 1
end
return 0
";

/// KEYS: subs, presence, users, channels. ARGV: node, channel. Removes
/// every field of the node on one channel; returns {vacated (0/1),
/// removed user…}.
const REAP: &str = r"
local before = sum(KEYS[1])
redis.call('HDEL', KEYS[1], ARGV[1])
local out = {0}
local p = ARGV[1] .. '|'
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(f, 1, #p) == p then
    redis.call('HDEL', KEYS[2], f)
    local u = string.sub(f, #p + 1)
    if redis.call('HINCRBY', KEYS[3], u, -1) <= 0 then
      redis.call('HDEL', KEYS[3], u)
      table.insert(out, u)
    end
  end
end
if before > 0 and sum(KEYS[1]) == 0 then
  redis.call('SREM', KEYS[4], ARGV[2])
  out[1] = 1
end
return out
";

/// What a count change did to the cluster-wide sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occupancy {
    Occupied,
    Vacated,
    Unchanged,
}

fn eval(script: &str, with_sum: bool, keys: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd("EVAL");
    if with_sum {
        c.arg(format!("{SUM}{script}"));
    } else {
        c.arg(script);
    }
    c.arg(keys.len());
    for k in keys {
        c.arg(*k);
    }
    c
}

/// Records `count` subscriptions of `node` on the channel.
pub(crate) async fn count(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    node: &str,
    (app, channel): (&str, &str),
    count: usize,
) -> Result<Occupancy, RedisError> {
    let (subs, chans, held) = (k.subs(app, channel), k.channels(app), k.held(node));
    let r: i64 = eval(COUNT, true, &[&subs, &chans, &held])
        .arg(node)
        .arg(count)
        .arg(channel)
        .arg(keys::held_entry(app, channel))
        .query_async(conn)
        .await?;
    Ok(match r {
        1 => Occupancy::Occupied,
        -1 => Occupancy::Vacated,
        _ => Occupancy::Unchanged,
    })
}

/// Records that `node` holds `user` on the channel; true when the user
/// became a member cluster-wide.
pub(crate) async fn join(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    node: &str,
    (app, channel): (&str, &str),
    (user, info): (&str, &[u8]),
) -> Result<bool, RedisError> {
    let (p, u, held) = (
        k.presence(app, channel),
        k.users(app, channel),
        k.held(node),
    );
    let r: i64 = eval(JOIN, false, &[&p, &u, &held])
        .arg(keys::presence_field(node, user))
        .arg(info)
        .arg(user)
        .arg(keys::held_entry(app, channel))
        .query_async(conn)
        .await?;
    Ok(r == 1)
}

/// Records that `node` no longer holds `user`; true when the user stopped
/// being a member cluster-wide.
pub(crate) async fn leave(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    node: &str,
    (app, channel): (&str, &str),
    user: &str,
) -> Result<bool, RedisError> {
    let (p, u) = (k.presence(app, channel), k.users(app, channel));
    let r: i64 = eval(LEAVE, false, &[&p, &u])
        .arg(keys::presence_field(node, user))
        .arg(user)
        .query_async(conn)
        .await?;
    Ok(r == 1)
}

/// Removes every field of `node` on one channel: (vacated, users that
/// stopped being members).
pub(crate) async fn reap(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    node: &str,
    (app, channel): (&str, &str),
) -> Result<(bool, Vec<String>), RedisError> {
    let (s, p, u, c) = (
        k.subs(app, channel),
        k.presence(app, channel),
        k.users(app, channel),
        k.channels(app),
    );
    let r: Vec<redis::Value> = eval(REAP, true, &[&s, &p, &u, &c])
        .arg(node)
        .arg(channel)
        .query_async(conn)
        .await?;
    let mut it = r.into_iter();
    let vacated = matches!(it.next(), Some(redis::Value::Int(1)));
    let users = it
        .filter_map(|v| redis::from_redis_value::<String>(v).ok())
        .collect();
    Ok((vacated, users))
}

/// KEYS: entries. ARGV: node. Removes every entry of the node on one
/// channel; returns their values (only to the one caller that removed
/// them, so a dead node's entries are announced gone once).
const REAP_ENTRIES: &str = r"
local out = {}
local p = ARGV[1] .. '|'
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #p) == p then
    redis.call('HDEL', KEYS[1], all[i])
    table.insert(out, all[i + 1])
  end
end
return out
";

/// Writes this node's entry changes on one channel in one transaction:
/// `gone` ids removed, `new` entries set; the channel stays in the node's
/// `held` set while it has entries.
pub(crate) async fn entries(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    node: &str,
    (app, channel): (&str, &str),
    (new, gone): (&[(&str, &[u8])], &[&str]),
    left_none: bool,
) -> Result<(), RedisError> {
    let key = k.entries(app, channel);
    let mut p = redis::pipe();
    p.atomic();
    if !gone.is_empty() {
        let mut c = redis::cmd("HDEL");
        c.arg(&key);
        for id in gone {
            c.arg(keys::presence_field(node, id));
        }
        p.add_command(c).ignore();
    }
    if !new.is_empty() {
        let mut c = redis::cmd("HSET");
        c.arg(&key);
        for (id, v) in new {
            c.arg(keys::presence_field(node, id)).arg(*v);
        }
        p.add_command(c).ignore();
    }
    let held = keys::held_entry(app, channel);
    if left_none {
        p.cmd("SREM").arg(k.held(node)).arg(held).ignore();
    } else {
        p.cmd("SADD").arg(k.held(node)).arg(held).ignore();
    }
    p.query_async::<()>(conn).await
}

/// Every node's entries of one channel.
pub(crate) async fn all_entries(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    (app, channel): (&str, &str),
) -> Result<Vec<Vec<u8>>, RedisError> {
    redis::cmd("HVALS")
        .arg(k.entries(app, channel))
        .query_async(conn)
        .await
}

/// Removes every entry of `node` on one channel; returns their values.
pub(crate) async fn reap_entries(
    conn: &mut MultiplexedConnection,
    k: &Keys,
    node: &str,
    (app, channel): (&str, &str),
) -> Result<Vec<Vec<u8>>, RedisError> {
    let e = k.entries(app, channel);
    eval(REAP_ENTRIES, false, &[&e])
        .arg(node)
        .query_async(conn)
        .await
}
