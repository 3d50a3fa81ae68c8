#!/usr/bin/env python3
"""How long a /metrics scrape takes with many routes' series populated, and how long
software attestation evidence takes, on a running release build.

Usage: bench/scrape_and_attest.py target/release/toolshed [rounds]

Starts the binary (ENV=production, a token, a fresh data dir, no configfs-tsm), sends each
spec route every method with and without the token (so each route template gets several
method and status-class series), then times `rounds` scrapes of /metrics and `rounds`
GET /api/attestation (after a first one, which hashes the executable) over one kept-alive
connection, and prints the series count and the median and p99 of each, in ms."""
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 500
token = "bench-token-0123456789abcdef"
port = 18090
data = tempfile.mkdtemp(prefix="toolshed-bench-")
env = dict(os.environ, ENV="production", LOG_FORMAT="json", TOOLSHED_API_TOKENS=token,
           TOOLSHED_ATTESTATION_TSM_DIR="/nonexistent", PORT=str(port),
           TOOLSHED_DATA_DIR=os.path.join(data, "data"))
proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    conn = None
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/health")
            conn.getresponse().read()
            break
        except OSError:
            time.sleep(0.05)
    auth = {"authorization": f"Bearer {token}"}

    def call(method, path, headers=None, body=None):
        # An answer refused before its body was read may close the connection: open anew.
        global conn
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
        response.read()
        return response

    conn.request("GET", "/openapi.json", headers=auth)
    spec = json.loads(conn.getresponse().read())
    for path in spec["paths"]:
        concrete = "/".join("k" if p.startswith("{") else p for p in path.split("/"))
        for method in ["GET", "POST", "PUT", "DELETE"]:
            for headers in (auth, {}):
                call(method, concrete, dict(headers, **{"content-type": "application/json"}), b"{}")
    for i in range(50):
        call("GET", f"/no/such/route/{i}", auth)

    def timed(path):
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            response = call("GET", path, auth)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status == 200, response.status
        samples.sort()
        return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", headers=auth)
    text = conn.getresponse().read().decode()
    series = [l for l in text.splitlines() if l and not l.startswith("#")]
    http_series = [l for l in series if l.startswith("toolshed_http_")]
    routes = {l.split('route="')[1].split('"')[0] for l in http_series if 'route="' in l}
    print(f"/metrics: {len(text)} bytes, {len(series)} series ({len(http_series)} HTTP) over {len(routes)} routes")
    median, p99 = timed("/metrics")
    print(f"scrape /metrics: median {median:.3f} ms, p99 {p99:.3f} ms ({rounds} scrapes)")
    nonce = "00112233445566778899aabbccddeeff"
    call("GET", f"/api/attestation?nonce={nonce}", auth)
    median, p99 = timed(f"/api/attestation?nonce={nonce}")
    print(f"attestation (software): median {median:.3f} ms, p99 {p99:.3f} ms ({rounds} requests)")
    median, p99 = timed("/api/health")
    print(f"health (for scale): median {median:.3f} ms, p99 {p99:.3f} ms")
finally:
    proc.kill()
    proc.wait()
