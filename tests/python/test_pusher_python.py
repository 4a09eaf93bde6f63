"""The official `pusher` Python library against portico's Pusher hub.

Covers the REST API (trigger, batch, channel info, users, terminate), the
library's channel/user auth signatures accepted by the WebSocket side, and
webhook verification with `validate_webhook`. Starts the real binary on
ephemeral ports; a tiny stdlib WebSocket client stands in for a browser.
Every wait is bounded. Run with ./run.sh.
"""

import base64
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import pusher

BIN = os.environ.get("PORTICO_BIN", "")
APP = dict(app_id="4242", key="py-key", secret="py-secret")


class WebhookSink(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (stdlib name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        WebhookSink.received.append((headers, body.decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class WS:
    """Minimal RFC 6455 client: text frames, client masking, close codes."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.close_code = None

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def recv(self):
        """Next text message as JSON, or None once a close frame arrives."""
        while True:
            b1, b2 = self._recv_exact(2)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            op = b1 & 0x0F
            if op == 1:
                return json.loads(payload)
            if op == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return None

    def next(self, event):
        deadline = time.time() + 5
        while time.time() < deadline:
            m = self.recv()
            if m is None:
                raise AssertionError(f"closed with {self.close_code} while waiting for {event}")
            if m.get("event") == event:
                return m
        raise AssertionError(f"no {event}")

    def send(self, obj):
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def close(self):
        self.sock.close()


def data(msg):
    d = msg.get("data")
    return json.loads(d) if isinstance(d, str) else d


class PusherPythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebhookSink)
        threading.Thread(target=cls.sink.serve_forever, daemon=True).start()
        cls.dir = tempfile.mkdtemp(prefix="portico-py-")
        cfg = os.path.join(cls.dir, "portico.toml")
        with open(cfg, "w") as f:
            f.write(
                f"""
[server]
plain = "127.0.0.1:0"
[tls]
dir = "{cls.dir}/certs"
[upstream]
url = "http://127.0.0.1:9"
[[apps]]
id = "{APP['app_id']}"
key = "{APP['key']}"
secret = "{APP['secret']}"
client_events = true
[[apps.webhooks]]
url = "http://127.0.0.1:{cls.sink.server_address[1]}/webhooks"
"""
            )
        cls.proc = subprocess.Popen(
            [BIN, "run", "--config", cfg],
            cwd=cls.dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "warn"},
        )
        out = b""
        deadline = time.time() + 15
        while time.time() < deadline:
            line = cls.proc.stdout.readline()
            out += line
            m = re.search(rb"plain\s+http://localhost:(\d+)", line)
            if m:
                cls.port = int(m.group(1))
                break
        else:
            raise RuntimeError(f"portico did not start: {out!r}")
        threading.Thread(target=cls.proc.stdout.read, daemon=True).start()
        cls.client = pusher.Pusher(host="127.0.0.1", port=cls.port, ssl=False, **APP)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
        cls.sink.shutdown()

    def connect(self):
        ws = WS(self.port, f"/app/{APP['key']}?protocol=7&client=py")
        est = ws.next("pusher:connection_established")
        return ws, data(est)["socket_id"]

    def test_trigger_reaches_subscriber_and_info(self):
        ws, _ = self.connect()
        ws.send({"event": "pusher:subscribe", "data": {"channel": "py-news"}})
        ws.next("pusher_internal:subscription_succeeded")
        self.assertEqual(self.client.trigger("py-news", "hello", {"n": 1}), {})
        self.assertEqual(data(ws.next("hello")), {"n": 1})
        self.client.trigger_batch([{"channel": "py-news", "name": "b", "data": "x"}])
        self.assertEqual(ws.next("b")["data"], "x")
        info = self.client.channel_info("py-news", ["subscription_count"])
        self.assertEqual(info, {"occupied": True, "subscription_count": 1})
        self.assertIn("py-news", self.client.channels_info()["channels"])
        ws.close()

    def test_library_auth_signatures_are_accepted(self):
        ws, sid = self.connect()
        auth = self.client.authenticate(channel="private-py", socket_id=sid)
        ws.send({"event": "pusher:subscribe", "data": {"channel": "private-py", **auth}})
        ws.next("pusher_internal:subscription_succeeded")
        presence = self.client.authenticate(
            channel="presence-py", socket_id=sid, custom_data={"user_id": "42", "user_info": {"name": "Py"}}
        )
        ws.send({"event": "pusher:subscribe", "data": {"channel": "presence-py", **presence}})
        ok = data(ws.next("pusher_internal:subscription_succeeded"))
        self.assertEqual(ok["presence"]["hash"], {"42": {"name": "Py"}})
        self.assertEqual(self.client.users_info("presence-py"), {"users": [{"id": "42"}]})
        user = self.client.authenticate_user(sid, {"id": "42"})
        ws.send({"event": "pusher:signin", "data": user})
        ws.next("pusher:signin_success")
        ws.send({"event": "pusher:subscribe", "data": {"channel": "#server-to-user-42"}})
        ws.next("pusher_internal:subscription_succeeded")
        self.client.send_to_user("42", "note", {"hi": True})
        self.assertEqual(data(ws.next("note")), {"hi": True})
        forged = {"auth": f"{APP['key']}:{'0' * 64}"}
        ws.send({"event": "pusher:subscribe", "data": {"channel": "private-nope", **forged}})
        err = ws.next("pusher:subscription_error")
        self.assertEqual(err["data"]["status"], 401)
        # pusher 3.3.4's terminate_user_connections() posts to
        # /users/{id}/terminate_connections, without the /apps/{app_id}
        # prefix of the REST API; send the documented path with its signer.
        from pusher.http import Request

        client = self.client._pusher_client
        path = f"/apps/{APP['app_id']}/users/42/terminate_connections"
        self.assertEqual(client.http.send_request(Request(client, "POST", path, {})), {})
        self.assertIsNone(ws.recv() if ws.close_code is None else None)
        self.assertEqual(ws.close_code, 4009)
        ws.close()

    def test_webhooks_validate(self):
        ws, sid = self.connect()
        ws.send({"event": "pusher:subscribe", "data": {"channel": "py-hooked"}})
        ws.next("pusher_internal:subscription_succeeded")
        deadline = time.time() + 5
        found = None
        while time.time() < deadline and found is None:
            for headers, body in list(WebhookSink.received):
                if "py-hooked" in body:
                    found = (headers, body)
            time.sleep(0.05)
        self.assertIsNotNone(found, "no webhook for py-hooked")
        headers, body = found
        hook = self.client.validate_webhook(headers["x-pusher-key"], headers["x-pusher-signature"], body)
        self.assertIsNotNone(hook)
        self.assertIn({"name": "channel_occupied", "channel": "py-hooked"}, hook["events"])
        self.assertIsNone(self.client.validate_webhook(headers["x-pusher-key"], "0" * 64, body))
        ws.close()

    def test_rest_errors(self):
        wrong = pusher.Pusher(host="127.0.0.1", port=self.port, ssl=False, **{**APP, "secret": "nope"})
        with self.assertRaises(pusher.errors.PusherBadAuth):
            wrong.trigger("a", "e", "x")
        with self.assertRaises(pusher.errors.PusherBadRequest):
            self.client.channel_info("not-presence", ["user_count"])


if __name__ == "__main__":
    unittest.main()
