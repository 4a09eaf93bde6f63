"""The Python `realtime` package (vsn 1.0.0) against portico's Supabase front."""

import asyncio
import json

import websockets
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

from conftest import anon, jwt

WAIT = 8


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def client(port, token=None):
    c = AsyncRealtimeClient(f"ws://127.0.0.1:{port}/realtime/v1", token or anon(), auto_reconnect=False)
    await asyncio.wait_for(c.connect(), WAIT)
    return c


async def subscribe(channel):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def cb(state, err):
        if fut.done():
            return
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            fut.set_result(state)
        elif state in (RealtimeSubscribeStates.CHANNEL_ERROR, RealtimeSubscribeStates.TIMED_OUT):
            fut.set_result((state, str(err)))

    await channel.subscribe(cb)
    return await asyncio.wait_for(fut, WAIT)


def test_broadcast_between_python_clients(portico):
    async def main():
        a, b = await client(portico), await client(portico)
        try:
            got = asyncio.get_running_loop().create_future()
            ca = a.channel("py-room", {"config": {"broadcast": {"self": True, "ack": True}}})
            cb = b.channel("py-room")
            cb.on_broadcast("hello", lambda m: got.done() or got.set_result(m))
            assert await subscribe(ca) == RealtimeSubscribeStates.SUBSCRIBED
            assert await subscribe(cb) == RealtimeSubscribeStates.SUBSCRIBED
            await ca.send_broadcast("hello", {"n": 1})
            m = await asyncio.wait_for(got, WAIT)
            assert '"n": 1' in json.dumps(m), m
        finally:
            await a.close()
            await b.close()

    run(main())


def test_v2_binary_broadcast_reaches_python_v1_as_json(portico):
    async def main():
        b = await client(portico)
        try:
            got = asyncio.get_running_loop().create_future()
            cb = b.channel("cross")
            cb.on_broadcast("move", lambda m: got.done() or got.set_result(m))
            assert await subscribe(cb) == RealtimeSubscribeStates.SUBSCRIBED
            url = f"ws://127.0.0.1:{portico}/realtime/v1/websocket?apikey={anon()}&vsn=2.0.0"
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps(["1", "1", "realtime:cross", "phx_join", {"config": {}}]))
                reply = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                assert reply[4]["status"] == "ok"
                topic, event, payload = b"realtime:cross", b"move", b'{"y":2}'
                frame = bytes([3, 1, 1, len(topic), len(event), 0, 1]) + b"1" + b"2" + topic + event + payload
                await ws.send(frame)
                m = await asyncio.wait_for(got, WAIT)
            assert json.dumps(m).find('"y": 2') >= 0
        finally:
            await b.close()

    run(main())


def test_presence_sync(portico):
    async def main():
        a, b = await client(portico), await client(portico)
        try:
            ca = a.channel("py-presence", {"config": {"presence": {"key": "alice"}}})
            cb = b.channel("py-presence", {"config": {"presence": {"key": "bob"}}})
            joined = asyncio.get_running_loop().create_future()
            cb.on_presence_join(lambda key, cur, new: key == "alice" and not joined.done() and joined.set_result(new))
            cb.on_presence_sync(lambda: None)
            assert await subscribe(ca) == RealtimeSubscribeStates.SUBSCRIBED
            assert await subscribe(cb) == RealtimeSubscribeStates.SUBSCRIBED
            await ca.track({"name": "Alice"})
            await asyncio.wait_for(joined, WAIT)
            for _ in range(100):
                if "alice" in cb.presence_state():
                    break
                await asyncio.sleep(0.05)
            assert cb.presence_state()["alice"][0]["name"] == "Alice"
        finally:
            await a.close()
            await b.close()

    run(main())


def test_private_deny_and_allow(portico):
    async def main():
        u1 = jwt({"role": "authenticated", "sub": "u1", "exp": 4102444800})
        c = await client(portico, u1)
        try:
            ok = c.channel("user:u1", {"config": {"private": True}})
            assert await subscribe(ok) == RealtimeSubscribeStates.SUBSCRIBED
            denied = c.channel("user:u2", {"config": {"private": True}})
            state, err = await subscribe(denied)
            assert state == RealtimeSubscribeStates.CHANNEL_ERROR
            assert "Unauthorized" in err
        finally:
            await c.close()

    run(main())


def test_postgres_changes_refused(portico):
    async def main():
        c = await client(portico)
        try:
            ch = c.channel("db")
            ch.on_postgres_changes("*", schema="public", table="t", callback=lambda p: None)
            state, err = await subscribe(ch)
            assert state == RealtimeSubscribeStates.CHANNEL_ERROR
            assert "PostgresChangesUnsupported" in err
        finally:
            await c.close()

    run(main())


def test_http_send_and_opaque_key(portico):
    async def main():
        sub = await client(portico, "sb_publishable_py")
        try:
            got = asyncio.get_running_loop().create_future()
            ch = sub.channel("py-rest")
            ch.on_broadcast("ping", lambda m: got.done() or got.set_result(m))
            assert await subscribe(ch) == RealtimeSubscribeStates.SUBSCRIBED
            sender = AsyncRealtimeClient(f"ws://127.0.0.1:{portico}/realtime/v1", anon(), auto_reconnect=False)
            await sender.channel("py-rest").http_send("ping", {"k": "v"})
            m = await asyncio.wait_for(got, WAIT)
            assert "v" in json.dumps(m)
        finally:
            await sub.close()

    run(main())


def test_handshake_rejection(portico):
    async def main():
        url = f"ws://127.0.0.1:{portico}/realtime/v1/websocket?apikey=bad&vsn=1.0.0"
        try:
            async with websockets.connect(url):
                raise AssertionError("connected with a bad key")
        except websockets.exceptions.InvalidStatus as e:
            assert e.response.status_code == 401
            assert b"not a valid JWT" in e.response.body

    run(main())


def test_set_auth_token_then_expiry(portico):
    async def main():
        c = await client(portico)
        try:
            await c.set_auth(jwt({"role": "anon", "exp": int(__import__("time").time()) + 2}))
            expiring = c.channel("py-exp")
            events = []
            subscribed = asyncio.get_running_loop().create_future()

            def cb(state, err):
                events.append((state, str(err)))
                if state == RealtimeSubscribeStates.SUBSCRIBED and not subscribed.done():
                    subscribed.set_result(True)

            await expiring.subscribe(cb)
            await asyncio.wait_for(subscribed, WAIT)
            # An error system message reaches the client as a channel error.
            for _ in range(160):
                if any("Token has expired" in e for _, e in events):
                    break
                await asyncio.sleep(0.05)
            assert any("Token has expired" in e for _, e in events), events
        finally:
            await c.close()

    run(main())


def test_batch_rest_endpoint(portico):
    async def main():
        import urllib.request

        sub = await client(portico)
        try:
            got = asyncio.get_running_loop().create_future()
            ch = sub.channel("py-batch")
            ch.on_broadcast("b", lambda m: got.done() or got.set_result(m))
            assert await subscribe(ch) == RealtimeSubscribeStates.SUBSCRIBED
            body = json.dumps({"messages": [{"topic": "py-batch", "event": "b", "payload": {"z": 3}}]}).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{portico}/realtime/v1/api/broadcast",
                data=body,
                headers={"Authorization": f"Bearer {anon()}", "Content-Type": "application/json"},
                method="POST",
            )
            status = await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=WAIT).status)
            assert status == 202
            m = await asyncio.wait_for(got, WAIT)
            assert '"z": 3' in json.dumps(m)
        finally:
            await sub.close()

    run(main())
