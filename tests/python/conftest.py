"""Starts the real portico binary on an ephemeral port with a [supabase] config.

PORTICO_BIN names the binary; otherwise $CARGO_TARGET_DIR/debug/portico or
target/debug/portico is used. Every wait is bounded.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ROOT = Path(__file__).resolve().parents[2]

CONFIG = f"""
[server]
plain = "127.0.0.1:0"
[tls]
mode = "off"
[log]
level = "warn"
[supabase]
jwt_secrets = ["{SECRET}"]
api_keys = {{ sb_publishable_py = "anon" }}
[supabase.limits]
join_error_delay = "0s"
handshake_error_delay = "0s"
[[supabase.rules]]
topic = "user:{{sub}}"
roles = ["authenticated"]
broadcast = ["read", "write"]
presence = ["read", "write"]
"""


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def jwt(claims: dict) -> str:
    head = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(claims)
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def anon(ttl: int = 3600) -> str:
    return jwt({"role": "anon", "exp": int(time.time()) + ttl})


def _binary() -> str:
    if os.environ.get("PORTICO_BIN"):
        return os.environ["PORTICO_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "portico")


@pytest.fixture(scope="session")
def portico():
    d = tempfile.mkdtemp(prefix="portico-py-")
    cfg = Path(d) / "portico.toml"
    cfg.write_text(CONFIG)
    log = open(Path(d) / "out.log", "w+")
    proc = subprocess.Popen([_binary(), "run", "--config", str(cfg)], cwd=d, stdout=log, stderr=subprocess.STDOUT)
    port = None
    deadline = time.time() + 15
    while time.time() < deadline and port is None:
        log.seek(0)
        m = re.search(r"plain\s+http://localhost:(\d+)", log.read())
        if m:
            port = int(m.group(1))
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    if port is None:
        log.seek(0)
        proc.kill()
        raise RuntimeError(f"portico did not start:\n{log.read()}")
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
