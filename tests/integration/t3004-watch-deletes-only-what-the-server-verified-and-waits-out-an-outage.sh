#!/usr/bin/env bash
# t3004: push --watch --delete-after-verify removes a recording only once
# the server holds it with the same SHA-256: when the file disappears the
# server already lists it; a file the server refuses stays; a file written
# while the server is down stays until the server is back (same port), is
# then uploaded once and only then deleted.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device dock-1)
ST="$T/state"
DOCK="$T/dock"
mkdir -p "$DOCK"
FIRST_PORT=$PORT
sha() { sha256sum "$1" | cut -d' ' -f1; }
# Evidence ids the server lists with this SHA-256.
server_has() {
  curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence?sha256=$1" | jq -r '.items[].id'
}
wait_gone() {
  for _ in $(seq 1 $(($2 * 10))); do
    [ -e "$1" ] || return 0
    sleep 0.1
  done
  fail "$1 still there after $2 s; stderr: $(cat "$T/err")"
}

"$CUSTOS" push --watch "$DOCK" --delete-after-verify --settle 1 --server "$URL" --token "$TOK" \
  --state-dir "$ST" >"$T/out" 2>"$T/err" &
WATCH_PID=$!
t_bg "$WATCH_PID"

# 1. Uploaded, verified, then deleted.
t_noise 2000000 "$T/a.bin"
want_a=$(sha "$T/a.bin")
cp "$T/a.bin" "$DOCK/a.bin"
wait_gone "$DOCK/a.bin" 15
ids=$(server_has "$want_a")
[ -n "$ids" ] || fail "a.bin was deleted but the server does not hold it"
assert_eq "$ids $want_a $DOCK/a.bin" "$(grep 'a.bin$' "$T/out")" "upload line for a.bin"

# 2. Refused by the server (this token may not speak for cam-other): kept.
DOCK2="$T/dock2"
mkdir -p "$DOCK2"
"$CUSTOS" push --watch "$DOCK2" --delete-after-verify --settle 1 --device cam-other \
  --server "$URL" --token "$TOK" --state-dir "$ST" >"$T/out2" 2>"$T/err2" &
W2=$!
t_bg "$W2"
t_noise 1000 "$DOCK2/refused.bin"
for _ in $(seq 1 100); do
  grep -q 'not uploaded' "$T/err2" && break
  sleep 0.1
done
assert_match "refused.bin: not uploaded: .*403.*uploads for device 'dock-1' only" "$(cat "$T/err2")" \
  "the refusal is logged with the server's reason"
sleep 2.5 # two rescans: it is neither retried nor deleted
[ -f "$DOCK2/refused.bin" ] || fail "a file the server refused was deleted"
assert_eq 1 "$(grep -c 'not uploaded' "$T/err2")" "a refused file is not retried in a loop"
[ -s "$T/out2" ] && fail "a refused file was reported as uploaded"
kill -TERM "$W2"
rc=0; wait "$W2" || rc=$?
assert_eq 0 "$rc" "second watcher exit status"

# 3. Written while the server is down: kept until it is back, then sent.
t_kill_server
t_noise 500000 "$T/c.bin"
want_c=$(sha "$T/c.bin")
cp "$T/c.bin" "$DOCK/c.bin"
sleep 3
[ -f "$DOCK/c.bin" ] || fail "c.bin was deleted while the server was down"
assert_match 'c.bin: .*retrying in' "$(cat "$T/err")" "the watcher retries during the outage"
kill -0 "$WATCH_PID" 2>/dev/null || fail "the watcher exited during the outage"
t_start_server --listen "127.0.0.1:$FIRST_PORT"
wait_gone "$DOCK/c.bin" 40
ids=$(server_has "$want_c")
[ -n "$ids" ] || fail "c.bin was deleted but the server does not hold it"
assert_eq 1 "$(wc -l <<<"$ids")" "c.bin uploaded once"
assert_eq "$ids $want_c $DOCK/c.bin" "$(grep 'c.bin$' "$T/out")" "upload line for c.bin"
assert_eq 2 "$(wc -l <"$T/out")" "upload lines in all"

kill -TERM "$WATCH_PID"
rc=0; wait "$WATCH_PID" || rc=$?
assert_eq 0 "$rc" "watcher exit status after SIGTERM"
t_stop_server
