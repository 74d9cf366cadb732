# Shared helpers for the integration tests. Each test is a bash script that
# sources this file, starts the real server on a free loopback port in its
# own temporary directory, and talks to it with curl and the custos CLI.
#
#   t_start_server [serve options]   start (or restart) the server; sets URL, PORT
#   t_stop_server                    SIGTERM, and check it exits 0
#   t_kill_server                    SIGKILL, as a crash would
#   t_token ROLE [--device D|--user U]  print a new token's secret
#   t_curl ARGS...                   curl with status code on the last line
#   assert_eq WANT GOT MESSAGE, assert_match REGEX TEXT MESSAGE, fail MESSAGE
#   t_noise SIZE FILE [TEXT]         random bytes (after TEXT) that are not media
#   call CURL-ARGS...                one request: sets ST and BODY, headers in $T/h
#   hdr NAME, auth TOKEN, metric NAME  a header of the last call, an
#                                    Authorization header, a /metrics value
#   t_bg PID                         a background process killed when the test ends
#   t_on_exit COMMAND                run COMMAND first when the test ends (any way)
#   t_small_disk SIZE                make the server's home a SIZE tmpfs at $MNT
#                                    (root only; else the test is skipped, 77)
# For the ledger and time-stamp tests (t4xxx):
#   MV ARGS...                       the independent verifier, merkle_verify.py
#   t_put TOKEN FILE DEVICE          one-request upload of FILE; prints the evidence id
#   t_sth_at_least N [S]             wait (10 s) for a signed head of size >= N; prints it
#   t_wait_200 URL OUT [S]           GET URL as admin until 200 (15 s); body to OUT
#   t_free_port                      a loopback port nothing listens on
#   t_tsa_pki DIR [NAME]             CA + TSA certificate + tsa.cnf in DIR (openssl CLI)
#   t_tsa_start DIR PORT             tsa_server.py for DIR/tsa.cnf on PORT (0: any);
#                                    sets TSA_PORT, TSA_PID, TSA_URL
#   no_probed                        drop "probed" events from an /events answer in $BODY
#   t_fresh NAME, t_verify ARGS...   a copy of the archive $PRISTINE; custos verify on it
#                                    (text and --json; VRC, $T/v.txt, $T/v.json)
#
# The environment provides CUSTOS (the binary) and, optionally,
# CUSTOS_TEST_TMP (where temporary directories go).
set -euo pipefail

: "${CUSTOS:?CUSTOS must point at the custos binary}"
T=$(mktemp -d "${CUSTOS_TEST_TMP:-/tmp}/custos-it.XXXXXX")
export XDG_CONFIG_HOME="$T/config" # custos get pins ledger keys there, not in the real home
HOME_DIR="$T/var"
SERVER_PID=""
SERVER_LOG="$T/server.log"
BG=""
EXIT_HOOKS=()
MNT=""

t_cleanup() {
  local rc=$?
  set +e
  for h in "${EXIT_HOOKS[@]}"; do eval "$h"; done
  for p in $BG; do
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$SERVER_LOG" ]; then
    echo "---- server log (last 40 lines) ----" >&2
    tail -n 40 "$SERVER_LOG" >&2
  fi
  if [ -n "$MNT" ]; then umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; fi
  rm -rf "$T"
  exit "$rc"
}
trap t_cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

assert_eq() {
  [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

assert_match() {
  [[ "$2" =~ $1 ]] || fail "$3: '$2' does not match /$1/"
}

# t_noise SIZE FILE [TEXT]: SIZE random bytes (after TEXT, if given) that
# libavformat cannot open. Random bytes are media now and then: about one
# 80 kB file in 250 probes as an H.263 stream or as LRC lyrics, and a test
# that wants a file that is not media must not fail by that chance. Probed
# under a name with no extension, as the server's objects have none.
t_noise() {
  local i probe="$T/.noise-$BASHPID" # writers may run side by side
  for i in 1 2 3 4 5 6 7 8; do
    { printf '%s' "${3:-}"; head -c "$1" /dev/urandom; } >"$probe"
    if ! ffprobe -v quiet "$probe" </dev/null; then
      mv "$probe" "$2"
      return
    fi
  done
  fail "t_noise: eight random files in a row opened as media"
}

t_start_server() {
  rm -f "$T/port"
  "$CUSTOS" serve --home "$HOME_DIR" --listen 127.0.0.1:0 --port-file "$T/port" "$@" \
    >>"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    [ -s "$T/port" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited during start-up"
    sleep 0.05
  done
  [ -s "$T/port" ] || fail "server did not start within 10 s"
  PORT=$(cat "$T/port")
  URL="http://127.0.0.1:$PORT"
  ADMIN=$(cat "$HOME_DIR/admin.token")
  export URL PORT ADMIN
}

t_stop_server() {
  kill -TERM "$SERVER_PID"
  local rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  assert_eq 0 "$rc" "server exit status after SIGTERM"
}

t_kill_server() {
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

t_token() {
  local role=$1
  shift
  "$CUSTOS" token create --server "$URL" --token "$ADMIN" --role "$role" "$@" 2>/dev/null
}

# curl that prints the body, then the status code on a line of its own.
t_curl() {
  curl -sS -w '\n%{http_code}\n' "$@"
}

# The last line of t_curl's output, and everything before it.
t_status() { tail -n 1 <<<"$1"; }
t_body() { sed '$d' <<<"$1"; }

# A header's value from a file written by curl -D.
t_header() {
  grep -i "^$1:" "$2" | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

b64() { printf '%s' "$1" | base64 -w0; }

# A small real recording: H.264 + AAC in MP4 (needs the ffmpeg CLI).
t_make_mp4() {
  local out=$1 secs=${2:-1}
  ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc=size=160x120:rate=15" \
    -f lavfi -i "sine=frequency=440" -t "$secs" -c:v libx264 -preset ultrafast \
    -c:a aac -shortest -y "$out"
}

# Background processes (clients, proxies) that must not outlive the test.
t_bg() { BG="$BG $*"; }

# t_fault_proxy FAULT: fault_proxy.py (see there for the faults) in front of
# the server. t_fault_proxy SCRIPT.py ARGS...: a script of the test's own
# that imports fault_proxy, run with the server's port, the port file and
# the log file, then ARGS. Either way PROXY is its URL and $T/proxy.log
# lists the requests it forwarded.
t_fault_proxy() {
  local script=$IT_DIR/fault_proxy.py
  if [[ $1 == *.py ]]; then script=$1; shift; fi
  rm -f "$T/proxy.port"
  PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$IT_DIR" python3 "$script" "$PORT" "$T/proxy.port" "$T/proxy.log" "$@" 2>>"$T/proxy.err" &
  t_bg $!
  for _ in $(seq 1 100); do
    [ -s "$T/proxy.port" ] && break
    sleep 0.05
  done
  [ -s "$T/proxy.port" ] || fail "the proxy did not start: $(cat "$T/proxy.err" 2>/dev/null)"
  PROXY="http://127.0.0.1:$(cat "$T/proxy.port")"
}

# Cleanup of the test's own (a gdb to release, say), run before the server
# is killed.
t_on_exit() { EXIT_HOOKS+=("$*"); }

# A small disk for the server's home (spool and objects must share one file
# system, so all of it), unmounted when the test ends.
t_small_disk() {
  if [ "$(id -u)" != 0 ]; then
    echo "SKIP: $(basename "$0") needs root to mount a tmpfs as a small disk" >&2
    exit 77
  fi
  mkdir -p "$T/disk"
  if ! mount -t tmpfs -o "size=$1,mode=0755" custos-test "$T/disk" 2>"$T/mount.err"; then
    echo "SKIP: cannot mount a tmpfs here: $(cat "$T/mount.err")" >&2
    exit 77
  fi
  MNT="$T/disk"
  HOME_DIR="$MNT/var"
}

TUS=(-H 'Tus-Resumable: 1.0.0')
OCT=(-H 'Content-Type: application/offset+octet-stream')
call() { local o; o=$(t_curl -D "$T/h" "$@") || true; ST=$(t_status "$o"); BODY=$(t_body "$o"); }
hdr() { t_header "$1" "$T/h" || true; }
auth() { printf 'Authorization: Bearer %s' "$1"; }
metric() {
  curl -sS -H "$(auth "$ADMIN")" "$URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# ---- ledger and time-stamp tests (t4xxx) ----------------------------------
IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The independent verifier (merkle_verify.py: RFC 9162 proofs, signed notes).
MV() { python3 "$IT_DIR/merkle_verify.py" "$@"; }

# t_put TOKEN FILE DEVICE: a creation-with-upload of FILE; prints the evidence id.
t_put() {
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$1")" -H "Upload-Length: $(stat -c %s "$2")" \
    -H "Upload-Metadata: filename $(b64 "$(basename "$2")"),device_id $(b64 "$3")" \
    --data-binary "@$2" "$URL/v1/uploads"
  assert_eq 201 "$ST" "upload of $2"
  local ev
  ev=$(hdr Custos-Evidence-Id)
  [ -n "$ev" ] || fail "no Custos-Evidence-Id for $2"
  echo "$ev"
}

# t_sth_at_least N [SECONDS]: waits (10 s) for a signed head of at least N
# events; prints its JSON.
t_sth_at_least() {
  local s i
  for i in $(seq 1 $((${2:-10} * 10))); do
    s=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/sth" || true)
    [ "$(jq -r '.size // 0' <<<"$s" 2>/dev/null || echo 0)" -ge "$1" ] && { echo "$s"; return; }
    sleep 0.1
  done
  fail "no signed tree head of size >= $1 within ${2:-10} s (last: $s)"
}

# t_wait_200 URL OUT [SECONDS]: GETs URL as admin until it answers 200
# (default 15 s); the body goes to OUT.
t_wait_200() {
  local st i
  for i in $(seq 1 $((${3:-15} * 5))); do
    st=$(curl -sS -o "$2" -w '%{http_code}' -H "$(auth "$ADMIN")" "$1" || true)
    [ "$st" = 200 ] && return
    sleep 0.2
  done
  fail "GET $1 did not answer 200 within ${3:-15} s (last: $st $(head -c 300 "$2"))"
}

t_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# t_tsa_pki DIR [NAME]: a CA (ca.pem) and a TSA certificate it issued
# (tsa.pem/tsa.key, extendedKeyUsage critical timeStamping), and tsa.cnf for
# `openssl ts -reply`, all in DIR, made with the openssl CLI.
t_tsa_pki() {
  local d=$1 name=${2:-Test TSA}
  mkdir -p "$d"
  printf '%s\n' '[req]' 'distinguished_name = dn' '[dn]' '[ca]' 'basicConstraints = critical,CA:TRUE' \
    'keyUsage = critical,keyCertSign,cRLSign' 'subjectKeyIdentifier = hash' '[tsa]' \
    'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature,nonRepudiation' \
    'extendedKeyUsage = critical,timeStamping' 'subjectKeyIdentifier = hash' \
    'authorityKeyIdentifier = keyid:always' >"$d/x509.cnf"
  openssl req -x509 -config "$d/x509.cnf" -extensions ca -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 30 -subj "/CN=$name root" 2>"$d/pki.err" &&
    openssl req -new -config "$d/x509.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$d/tsa.key" -out "$d/tsa.csr" -subj "/CN=$name" 2>>"$d/pki.err" &&
    openssl x509 -req -in "$d/tsa.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial 0x$RANDOM$RANDOM \
      -days 30 -extfile "$d/x509.cnf" -extensions tsa -out "$d/tsa.pem" 2>>"$d/pki.err" ||
    fail "cannot make the test TSA's certificates: $(cat "$d/pki.err")"
  printf '%s\n' '[tsa]' 'default_tsa = tsa_config1' '[tsa_config1]' 'serial = ./tsaserial' \
    'signer_cert = ./tsa.pem' 'certs = ./ca.pem' 'signer_key = ./tsa.key' 'signer_digest = sha256' \
    'default_policy = 1.3.6.1.4.1.99999.1.1' 'other_policies = 1.3.6.1.4.1.99999.1.2' \
    'digests = sha256, sha384, sha512' 'accuracy = secs:1' 'ordering = yes' 'tsa_name = yes' \
    'ess_cert_id_alg = sha256' >"$d/tsa.cnf"
}

# t_tsa_start DIR PORT: runs tsa_server.py for DIR/tsa.cnf on PORT (0: any
# free port) until the test ends; sets TSA_PORT, TSA_PID, TSA_URL.
t_tsa_start() {
  rm -f "$1/ready"
  python3 "$IT_DIR/tsa_server.py" "$2" "$1/tsa.cnf" "$1/ready" 2>>"$1/tsa.log" &
  TSA_PID=$!
  t_bg "$TSA_PID"
  local i
  for i in $(seq 1 100); do
    [ -s "$1/ready" ] && break
    kill -0 "$TSA_PID" 2>/dev/null || fail "tsa_server.py exited: $(cat "$1/tsa.log")"
    sleep 0.05
  done
  [ -s "$1/ready" ] || fail "tsa_server.py did not start within 5 s"
  TSA_PORT=$(cat "$1/ready")
  TSA_URL="http://127.0.0.1:$TSA_PORT/tsa"
}

# no_probed: drops "probed" events from the /events answer in $BODY (the probe
# job runs beside the stamp job, so where its event falls varies).
no_probed() {
  BODY=$(jq '.events |= map(select(.event.type != "probed"))' <<<"$BODY")
}

# t_fresh NAME: a copy of the stopped archive $PRISTINE at $T/NAME; sets HOME_DIR.
t_fresh() {
  HOME_DIR="$T/$1"
  cp -a "$PRISTINE" "$HOME_DIR"
}

# t_verify ARGS...: custos verify --home $HOME_DIR, as text and as --json;
# sets VRC (the exit status, the same for both), writes $T/v.txt and $T/v.json.
t_verify() {
  VRC=0
  "$CUSTOS" verify --home "$HOME_DIR" "$@" >"$T/v.txt" 2>&1 || VRC=$?
  local rc=0
  "$CUSTOS" verify --home "$HOME_DIR" --json "$@" >"$T/v.json" 2>"$T/v.err" || rc=$?
  assert_eq "$VRC" "$rc" "verify's exit status with and without --json"
}

# ---- rendition tests (t12xx) ------------------------------------------------
#   t_push FILE DEVICE [ARGS...]  custos push of FILE as admin for DEVICE; prints the
#                                 evidence id
#   t_rend_settle ID [S]          polls GET /v1/evidence/ID (admin) until it has all
#                                 four renditions and none is queued or running
#                                 (default 90 s); the record is left in $BODY
t_push() {
  local f=$1 dev=$2 line
  shift 2
  line=$(CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" push --state-dir "$T/push-state" \
    --device "$dev" "$@" "$f") || fail "custos push $f failed"
  [ -n "${line%% *}" ] || fail "custos push $f printed no evidence id"
  echo "${line%% *}"
}

t_rend_settle() {
  local i n
  for i in $(seq 1 $((${2:-90} * 10))); do
    call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1"
    [ "$ST" = 200 ] || fail "GET /v1/evidence/$1 answered $ST: $BODY"
    n=$(jq '[(.renditions // {}) | .master, .access, .framehash, .poster | select(. != null)
             | select(.state != "queued" and .state != "running")] | length' <<<"$BODY")
    [ "$n" = 4 ] && return 0
    sleep 0.1
  done
  fail "the renditions of $1 did not settle within ${2:-90} s: $(jq -c '.renditions | map_values(.state)' <<<"$BODY")"
}
