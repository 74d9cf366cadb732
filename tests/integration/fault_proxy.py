"""A forwarding HTTP proxy that breaks one thing, for the integration tests.

A test that needs an answer lost, a download cut or a body altered at an
exact point runs its client through this proxy. The forwarding, the
logging and the start-up live here; the one broken thing is a Fault.

    python3 fault_proxy.py UPSTREAM_PORT PORT_FILE LOG_FILE FAULT

FAULT is one of:
  lose-last-patch-answer  the answer to the PATCH that completes an upload
                          (the one carrying Custos-Evidence-Id) is dropped,
                          once, after the server has acted on it; HEAD
                          answers lose their Custos-* headers, so the client
                          must ask for the upload's state to learn the id
  cut-export=N            the first download of an export's tar stops after
                          N bytes and the connection is closed

A test with a fault of its own imports this module (its directory is on
sys.path when the script sits there) and calls serve() with a subclass of
Fault. The port the proxy listens on is written to PORT_FILE, atomically,
once it accepts connections. Each request is logged to LOG_FILE as
"METHOD PATH -> STATUS", with " range=R if-range=I" before the arrow when
the request carried a Range header.
"""
import http.client
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = ("connection", "transfer-encoding", "keep-alive")


class Fault:
    """Passes everything through. Subclasses override what they break."""

    buffers = False  # True: every body is read whole and goes through rewrite()

    def drop(self, req, resp):
        """True: close the connection instead of answering (upstream acted)."""
        return False

    def keep_header(self, req, name):
        return True

    def rewrite(self, req, resp, body):
        """The body of a 200 answer to send instead (only when buffers)."""
        return body

    def cut(self, req):
        """Send at most this many bytes of the body, then close; None: all."""
        return None


class LoseLastPatchAnswer(Fault):
    def __init__(self):
        self.dropped = False

    def drop(self, req, resp):
        if req.command == "PATCH" and resp.getheader("Custos-Evidence-Id") and not self.dropped:
            self.dropped = True
            req.log("dropped the answer to the last PATCH")
            return True
        return False

    def keep_header(self, req, name):
        return not (req.command == "HEAD" and name.lower().startswith("custos-"))


class CutExport(Fault):
    def __init__(self, limit):
        self.limit, self.done = limit, False

    def cut(self, req):
        tar = req.command == "GET" and req.path.startswith("/v1/exports/") and not req.path.endswith("/status")
        if tar and not self.done:
            self.done = True
            return self.limit
        return None


def _handler(upstream, log_file, fault):
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def log(self, line):
            with open(log_file, "a") as f:
                f.write(line + "\n")

        def close(self):
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def forward(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            up = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
            up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in _HOP + ("expect", "content-length"):
                    up.putheader(k, v)
            if body is not None:
                up.putheader("Content-Length", str(len(body)))
            up.endheaders(body)
            resp = up.getresponse()
            rng = self.headers.get("Range")
            extra = f" range={rng} if-range={self.headers.get('If-Range')}" if rng else ""
            self.log(f"{self.command} {self.path}{extra} -> {resp.status}")
            if fault.drop(self, resp):
                self.close()
                return
            # A body of unknown length (chunked) is read whole: it goes on
            # with a Content-Length, so the client sees where it ends.
            data = None
            if self.command != "HEAD" and (fault.buffers or resp.getheader("Content-Length") is None):
                data = resp.read()
                if resp.status == 200 and fault.buffers:
                    data = fault.rewrite(self, resp, data)
            self.send_response_only(resp.status, resp.reason)
            for k, v in resp.getheaders():
                kl = k.lower()
                if kl in _HOP or (kl == "content-length" and data is not None) or not fault.keep_header(self, k):
                    continue
                self.send_header(k, v)
            if data is not None:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            limit, sent = fault.cut(self), 0
            chunks = [data] if data is not None else iter(lambda: resp.read(65536), b"")
            for chunk in chunks:
                if limit is not None and sent + len(chunk) > limit:
                    self.wfile.write(chunk[: limit - sent])
                    self.log(f"cut the download at {limit} bytes")
                    self.close()
                    return
                self.wfile.write(chunk)
                sent += len(chunk)

        do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = forward

    return Proxy


def serve(upstream, port_file, log_file, fault):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, log_file, fault))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


def _named(name):
    if name == "lose-last-patch-answer":
        return LoseLastPatchAnswer()
    if name.startswith("cut-export="):
        return CutExport(int(name.split("=", 1)[1]))
    sys.exit(f"fault_proxy: unknown fault {name!r}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: fault_proxy.py UPSTREAM_PORT PORT_FILE LOG_FILE FAULT")
    serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], _named(sys.argv[4]))
