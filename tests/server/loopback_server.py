"""`tinyllm serve` on a free loopback port for the stdlib-only server checks (serve_async_check.py,
bad_fields_sweep.py): start(args) runs BINARY serve ARGS --host 127.0.0.1 --port 0, reads the
port from its "listening on" line, drains its log on a thread, and returns (process, port) once
/health answers 200; exits naming `what` when the server does not start or never gets healthy."""
import http.client
import re
import subprocess
import sys
import threading
import time


def start(binary, args, what="the server"):
    p = subprocess.Popen([binary, "serve"] + list(args) + ["--host", "127.0.0.1", "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = None
    t0 = time.time()
    while time.time() - t0 < 120:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        p.kill()
        sys.exit(f"{what} did not start")
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()  # drain its log
    for _ in range(600):  # loading
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return p, port
        except OSError:
            pass
        time.sleep(0.1)
    p.kill()
    sys.exit(f"{what} never became healthy")
