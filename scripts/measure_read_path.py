#!/usr/bin/env python3
"""Quick latency figures for the read path against a running `ledgerport demo`.

Usage: scripts/measure_read_path.py BASE_URL CLIENT_ID SECRET SUBSCRIPTION_KEY [LEDGER_ID]

Sequential requests over one keep-alive connection, so the figures are per-request server latency
plus loopback, not throughput under concurrency (the benchmark harness of a later issue does that).
"""
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlparse


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(conn, method, path, headers, n):
    times = []
    body = b""
    for _ in range(n):
        t = time.perf_counter()
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            sys.exit(f"{method} {path}: {r.status} {body[:200]!r}")
    return times, body


def report(name, times, extra=""):
    print(f"{name:<34} n={len(times):<5} median {statistics.median(times):7.3f} ms   p99 {percentile(times, 99):7.3f} ms"
          f"   {len(times) / (sum(times) / 1000):8.0f} req/s sequential {extra}")


def main():
    base, client_id, secret, sub = sys.argv[1:5]
    ledger = sys.argv[5] if len(sys.argv) > 5 else "302321"
    u = urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    token_headers = {"client_id": client_id, "client_secret": secret, "Ocp-Apim-Subscription-Key": sub}
    run(conn, "POST", "/accesstoken/get", token_headers, 20)  # warm-up
    times, body = run(conn, "POST", "/accesstoken/get", token_headers, 1000)
    report("POST /accesstoken/get", times)
    token = json.loads(body)["access_token"]
    h = {"Authorization": f"Bearer {token}", "Ocp-Apim-Subscription-Key": sub}
    path = f"/report/v2/ledgers/{ledger}/fees/feed"
    run(conn, "GET", path, h, 10)
    times, body = run(conn, "GET", path, h, 300)
    items = len(json.loads(body)["items"])
    report(f"GET feed page ({items} entries)", times, f"{len(body)} bytes, {items / (statistics.median(times) / 1000):,.0f} entries/s")


if __name__ == "__main__":
    main()
