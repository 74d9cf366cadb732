#!/usr/bin/env bash
# t3006: the connection drops after the server committed the last PATCH but
# before its answer reached the client (a proxy swallows it, and strips the
# Custos-* headers from HEAD answers). The client HEADs, sees offset ==
# length, asks GET /v1/uploads/{id} for the evidence id and SHA-256, prints
# them and exits 0, without creating a second upload.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the proxy"; exit 77; }

t_start_server
TOK=$(t_token recorder --device cam-1)
F="$T/last.bin"
head -c 2000000 /dev/urandom >"$F"
want=$(sha256sum "$F" | cut -d' ' -f1)

cat >"$T/proxy.py" <<'EOF'
import http.client, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

upstream_port, port_file, log_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dropped = False

def log(line):
    with open(log_file, "a") as f:
        f.write(line + "\n")

class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        global dropped
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        up = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
        up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in ("connection", "expect", "content-length"):
                up.putheader(k, v)
        if body is not None:
            up.putheader("Content-Length", str(len(body)))
        up.endheaders(body)
        resp = up.getresponse()
        data = resp.read()
        log(f"{self.command} {self.path} -> {resp.status}")
        if self.command == "PATCH" and resp.getheader("Custos-Evidence-Id") and not dropped:
            dropped = True
            log("dropped the answer to the last PATCH")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            kl = k.lower()
            if kl in ("connection", "transfer-encoding", "content-length"):
                continue
            if self.command == "HEAD" and kl.startswith("custos-"):
                continue
            self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = do_OPTIONS = forward

srv = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
EOF
python3 "$T/proxy.py" "$PORT" "$T/proxy.port" "$T/proxy.log" >>"$T/proxy.log" 2>&1 &
PROXY_PID=$!
t_bg "$PROXY_PID"
for _ in $(seq 1 100); do
  [ -s "$T/proxy.port" ] && break
  sleep 0.05
done
[ -s "$T/proxy.port" ] || fail "the proxy did not start"
PURL="http://127.0.0.1:$(cat "$T/proxy.port")"

rc=0
out=$("$CUSTOS" push --server "$PURL" --token "$TOK" --state-dir "$T/state" "$F" 2>"$T/err") || rc=$?
assert_eq 0 "$rc" "exit status ($(cat "$T/err"))"
grep -q 'dropped the answer' "$T/proxy.log" || fail "the proxy never dropped an answer: $(cat "$T/proxy.log")"
grep -q '^HEAD /v1/uploads/.* -> 200' "$T/proxy.log" || fail "no HEAD after the lost answer"
grep -q '^GET /v1/uploads/.* -> 200' "$T/proxy.log" || fail "no GET of the upload's state"
read -r id got path <<<"$out"
assert_eq "$want" "$got" "printed sha256"
list=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence")
assert_eq 1 "$(jq '.items | length' <<<"$list")" "evidence records"
assert_eq "$id" "$(jq -r '.items[0].id' <<<"$list")" "printed evidence id"
assert_eq "$want" "$(jq -r '.items[0].sha256' <<<"$list")" "server's sha256"
assert_eq 1 "$(grep -c '^POST /v1/uploads -> 201' "$T/proxy.log")" "uploads created"
assert_eq 0 "$(find "$T/state/uploads" -name '*.json' | wc -l)" "remembered uploads after success"
t_stop_server
