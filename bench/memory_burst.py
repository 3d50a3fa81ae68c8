#!/usr/bin/env python3
"""Resident memory before, during and after a burst of large requests.

Starts the release binary on a fresh data directory, reads its resident set (VmRSS) when
idle, sends CLIENTS concurrent clients each PUTting SIZE-byte values for SECONDS, then
samples VmRSS for a minute. Prints one line per sample; the last line says whether memory
came back to within 10 MB of idle.

Usage: bench/memory_burst.py BINARY [SIZE_BYTES] [CLIENTS] [SECONDS] [ENV=VALUE ...]
"""
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time

binary = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
clients = int(sys.argv[3]) if len(sys.argv) > 3 else 40
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 5
extra = dict(arg.split("=", 1) for arg in sys.argv[5:])
port = 18600


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


with tempfile.TemporaryDirectory() as data:
    # As exposed: production needs an API token, which every request sends.
    token = "bench-token-0123456789abcdef"
    env = dict(os.environ, ENV="production", LOG_LEVEL="warn", TOOLSHED_API_TOKENS=token, **extra)
    server = subprocess.Popen(
        [binary, "--port", str(port), "--data-dir", data],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        time.sleep(1)
        idle = rss_mb(server.pid)
        print(f"idle: {idle:.1f} MB")
        body = os.urandom(size)
        stop = time.monotonic() + seconds
        counts = [0] * clients
        statuses = {}

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while time.monotonic() < stop:
                conn.request("PUT", f"/api/kv/entries/burst/{n}", body,
                             {"content-type": "application/octet-stream",
                              "authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
                counts[n] += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        peak = idle
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb(server.pid))
            time.sleep(0.05)
        print(f"burst: {sum(counts)} PUTs of {size} bytes by {clients} clients in {seconds:.0f} s, "
              f"statuses {statuses}, peak {peak:.1f} MB")
        started = time.monotonic()
        for at in (0, 1, 5, 10, 30, 60):
            time.sleep(max(0.0, started + at - time.monotonic()))
            print(f"after {at:>2} s: {rss_mb(server.pid):.1f} MB")
        last = rss_mb(server.pid)
        verdict = "within" if last - idle <= 10 else "NOT within"
        print(f"after a minute: {last:.1f} MB, {last - idle:+.1f} MB from idle ({verdict} 10 MB)")
    finally:
        server.terminate()
        server.wait()
