#!/usr/bin/env python3
"""Turns compare.sh's JSON lines into markdown tables: each figure for
portico and its peer(s), and portico's ratio to each peer. Repeated runs of
a case are reduced to their median."""
import json
import statistics
import sys
from collections import defaultdict

CPU = ("server_cpu_us_per_op", "server CPU µs per operation", "low")
# case prefix -> [(figure key, label, better)]; better is "high" or "low".
FIGURES = {
    "fanout": [("deliveries_per_s", "deliveries/s", "high"),
               ("latency_p50_ms", "latency p50 ms", "low"),
               ("latency_p99_ms", "latency p99 ms", "low"),
               ("latency_p999_ms", "latency p99.9 ms", "low"),
               ("latency_max_ms", "latency max ms", "low"),
               ("lost", "lost messages", "low"),
               ("publish_call_p99_ms", "REST publish call p99 ms", "low")],
    "idle": [("connections_ok", "connections held", "high"),
             ("connections_failed", "failed", "low"),
             ("still_open_after_hold", "still open after hold", "high"),
             ("server_rss_per_conn_kib", "server RSS KiB/connection", "low"),
             ("connect_rate_per_s", "connects/s", "high"),
             ("connect_p99_ms", "connect p99 ms", "low")],
    "churn": [("cycles_per_s", "connect+subscribe+leave cycles/s", "high"),
              ("cycles_failed", "failed cycles", "low"),
              ("connect_subscribe_p99_ms", "connect+subscribe p99 ms", "low"),
              ("member_events_per_s", "member_added/removed delivered/s", "high"),
              ("member_events_expected", "member events expected", None),
              ("member_added_received", "member_added received", None),
              ("member_removed_received", "member_removed received", None),
              ("member_added_p99_ms", "member_added latency p99 ms", "low")],
    "http": [("requests_per_s", "requests/s", "high"),
             ("p50_ms", "p50 ms", "low"),
             ("p99_ms", "p99 ms", "low"),
             ("non_2xx", "non-2xx", "low")],
    "download": [("rss_growth_mib", "RSS growth MiB", "low"),
                 ("rss_max_mib", "RSS max MiB", "low"),
                 ("served_mib", "MiB served", "high")],
    "tls-handshakes": [("per_s", "new TLS connections/s", "high"),
                       ("connection_p99_ms", "handshake+request p99 ms", "low"),
                       ("failed", "failed", "low")],
    "ws-echo": [("round_trips_per_s", "round trips/s", "high"),
                ("round_trip_p99_ms", "round trip p99 ms", "low"),
                ("failed", "failed", "low")],
}
PEERS = {"hub": ["sockudo"], "edge": ["nginx", "caddy"], "php": ["nginx", "caddy"]}
# Another portico build measured in the same run (bench/ab.sh): shown as a
# column, with portico's ratio to it and its own ratio to the peers.
BASE = "portico-base"


def figures_for(case):
    for prefix, figs in FIGURES.items():
        if case.startswith(prefix):
            return figs
    return []


def main():
    # Several files may be given: a case in a later file replaces the same
    # case from an earlier one (a re-run of one case).
    rows, seen = [], {}
    for path in sys.argv[1:]:
        batch = [json.loads(l) for l in open(path) if l.strip()]
        cases = {(r["suite"], r["case"]) for r in batch}
        rows = [r for r in rows if (r["suite"], r["case"]) not in cases] + batch
    del seen
    by = defaultdict(lambda: defaultdict(list))
    order = []
    for r in rows:
        key = (r["suite"], r["case"])
        if key not in order:
            order.append(key)
        by[key][r["server"]].append(r)
    print("# portico vs peers\n")
    print("Same machine, same run, back to back; ratio = portico / peer.\n")
    for suite, case in order:
        servers = by[(suite, case)]
        peers = [p for p in [BASE] + PEERS[suite] + ["upstream-direct"] if p in servers]
        # (numerator, denominator) of each ratio column.
        pairs = [("portico", p) for p in peers if p != "upstream-direct"]
        if BASE in servers:
            pairs += [(BASE, p) for p in PEERS[suite] if p in servers]
        print(f"## {suite}: {case}\n")
        head = "| figure | portico | " + " | ".join(peers) + " | " + " | ".join(
            f"{a}/{b}" for a, b in pairs) + " |"
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for key, label, _better in figures_for(case) + [CPU]:
            vals = {}
            for s, rs in servers.items():
                xs = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
                vals[s] = statistics.median(xs) if xs else None
            if all(v is None for v in vals.values()):
                continue
            fmt = lambda v: "—" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}")
            cells = [fmt(vals.get("portico"))] + [fmt(vals.get(p)) for p in peers]
            ratios = []
            for num, den in pairs:
                a, b = vals.get(num), vals.get(den)
                ratios.append(f"{a / b:.2f}×" if a is not None and b else "—")
            print(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        if case.startswith("idle"):
            per = servers.get("portico", [{}])[0].get("server_rss_per_conn_kib")
            if per:
                print(f"\nportico projected at 100k connections: {per * 100000 / 1024:,.0f} MiB "
                      f"({per} KiB × 100k; one process here is capped at 20000 fds).")
        errs = {s: rs[0].get("errors") for s, rs in servers.items() if rs[0].get("errors")}
        if errs:
            print(f"\nerrors: `{json.dumps(errs)[:300]}`")
        print()


if __name__ == "__main__":
    main()
