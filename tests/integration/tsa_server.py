#!/usr/bin/env python3
"""A test TSA: serves `openssl ts -reply` over HTTP (RFC 3161 section 3.4).

  tsa_server.py PORT TSA.CNF [READY-FILE]

Listens on 127.0.0.1:PORT (0: a free port). Once listening it writes the
port to READY-FILE, if given. Each POST of an application/timestamp-query is
answered by `openssl ts -reply -config TSA.CNF` run in the directory of
TSA.CNF (so its relative paths work) with an application/timestamp-reply.
One request at a time: openssl does not lock its serial file. Each request
is logged to stderr.
"""
import http.server
import os
import subprocess
import sys
import tempfile

CNF = os.path.abspath(sys.argv[2])
DIR = os.path.dirname(CNF)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/timestamp-query":
            return self.send_error(415, "want application/timestamp-query")
        try:
            n = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self.send_error(411)
        if n <= 0 or n > 65536:
            return self.send_error(400, "bad Content-Length")
        body = self.rfile.read(n)
        with tempfile.TemporaryDirectory() as d:
            q, r = os.path.join(d, "q.tsq"), os.path.join(d, "r.tsr")
            with open(q, "wb") as f:
                f.write(body)
            p = subprocess.run(["openssl", "ts", "-reply", "-config", CNF, "-queryfile", q,
                                "-out", r], cwd=DIR, capture_output=True, text=True)
            if p.returncode != 0 or not os.path.exists(r):
                sys.stderr.write("tsa_server: openssl ts -reply failed: %s\n" % p.stderr)
                return self.send_error(500)
            with open(r, "rb") as f:
                out = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, fmt, *args):
        sys.stderr.write("tsa_server: %s\n" % (fmt % args))
        sys.stderr.flush()


def main():
    srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    if len(sys.argv) > 3:
        tmp = sys.argv[3] + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, sys.argv[3])
    srv.serve_forever()


if __name__ == "__main__":
    main()
