#!/usr/bin/env bash
# t3002: the server is killed with SIGKILL in the middle of an upload and
# restarted on the same port two seconds later; the push that was running
# keeps retrying through the outage (HEAD, then PATCH from the durable
# offset) and completes with the right SHA-256, as one evidence record.
# With the server gone for good, --retries 2 gives up after three attempts
# (pauses of about 0.5 s and 1 s) with exit status 1 and the reason.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device cam-1)
ST="$T/state"
F="$T/crash.bin"
SIZE=$((12 * 1024 * 1024))
t_noise "$SIZE" "$F"
want=$(sha256sum "$F" | cut -d' ' -f1)
FIRST_PORT=$PORT

"$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --max-rate 3000000 "$F" \
  >"$T/out" 2>"$T/err" &
PUSH_PID=$!
t_bg "$PUSH_PID"
for _ in $(seq 1 100); do
  [ "$(metric custos_upload_bytes_received_total)" -ge 3000000 ] && break
  sleep 0.1
done
[ "$(metric custos_upload_bytes_received_total)" -lt "$SIZE" ] ||
  fail "the upload finished before the crash; the test proves nothing"
t_kill_server
sleep 2
kill -0 "$PUSH_PID" 2>/dev/null || fail "push exited during the outage: $(cat "$T/err")"
[ -s "$T/out" ] && fail "push printed a result while the server was down"

t_start_server --listen "127.0.0.1:$FIRST_PORT"
assert_eq "$FIRST_PORT" "$PORT" "restarted on the same port"
rc=0
for _ in $(seq 1 300); do
  kill -0 "$PUSH_PID" 2>/dev/null || break
  sleep 0.1
done
wait "$PUSH_PID" || rc=$?
assert_eq 0 "$rc" "push exit status after the outage ($(cat "$T/err"))"
assert_match 'retrying in' "$(cat "$T/err")" "push reported its retries"
read -r id got path <<<"$(cat "$T/out")"
assert_eq "$want" "$got" "printed sha256"
assert_eq "$want" "$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .sha256)" \
  "server's sha256"
list=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence")
assert_eq 1 "$(jq '.items | length' <<<"$list")" "one evidence record for one file"

# No server at all: --retries 2 means three attempts, then exit 1.
t_stop_server
G="$T/later.bin"
t_noise 1000 "$G"
start=$(date +%s%N)
rc=0
"$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --retries 2 "$G" \
  >"$T/out2" 2>"$T/err2" || rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
assert_eq 1 "$rc" "exit status when the server stays away"
assert_match 'gave up after 3 attempts without progress' "$(cat "$T/err2")" "the reason is given"
assert_eq 2 "$(grep -c 'retrying in' "$T/err2")" "retries logged"
[ "$elapsed_ms" -ge 800 ] || fail "gave up after $elapsed_ms ms: no backoff between attempts"
[ "$elapsed_ms" -le 8000 ] || fail "took $elapsed_ms ms to give up after 2 retries"
[ -s "$T/out2" ] && fail "a failed push printed a result"
true
