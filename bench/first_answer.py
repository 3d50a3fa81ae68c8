#!/usr/bin/env python3
"""Time from exec to the first successful GET /api/health, in ms.

Usage: first_answer.py PORT COMMAND [ARGS...]  (the server is left running; its pid is
printed on the second line)."""
import http.client
import subprocess
import sys
import time

port = int(sys.argv[1])
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/api/health")
        if conn.getresponse().status == 200:
            break
    except OSError:
        pass
    if time.perf_counter() - start > 10:
        proc.kill()
        sys.exit("server did not answer within 10 s")
    time.sleep(0.0005)
print(f"{(time.perf_counter() - start) * 1000:.1f}")
print(proc.pid)
