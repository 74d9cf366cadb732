#!/usr/bin/env bash
# t3008: SIGTERM to push --watch in the middle of a large upload parks it
# (the server keeps the bytes it received, the URL stays in the state
# directory) and exits 0 promptly; the next watcher resumes that upload at
# the server's offset rather than starting over, and uploads it once.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device dock-1)
ST="$T/state"
DOCK="$T/dock"
mkdir -p "$DOCK"
SIZE=$((8 * 1024 * 1024))
t_noise "$SIZE" "$T/big.bin"
want=$(sha256sum "$T/big.bin" | cut -d' ' -f1)

"$CUSTOS" push --watch "$DOCK" --settle 1 --max-rate 2000000 --server "$URL" --token "$TOK" \
  --state-dir "$ST" >"$T/out" 2>"$T/err" &
WATCH_PID=$!
t_bg "$WATCH_PID"
sleep 0.3
mv "$T/big.bin" "$DOCK/big.bin"
for _ in $(seq 1 100); do
  [ "$(metric custos_upload_bytes_received_total)" -ge 2000000 ] && break
  sleep 0.1
done
kill -TERM "$WATCH_PID"
start=$(date +%s%N)
rc=0
wait "$WATCH_PID" || rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
assert_eq 0 "$rc" "watcher exit status after SIGTERM mid-upload"
[ "$elapsed_ms" -lt 3000 ] || fail "the watcher took $elapsed_ms ms to stop"
[ -s "$T/out" ] && fail "a parked upload was reported as done"
[ -f "$DOCK/big.bin" ] || fail "the file went away"
state=$(ls "$ST"/uploads/*.json 2>/dev/null || true)
[ -n "$state" ] || fail "the parked upload was not remembered"
# The server makes the offset durable when it sees the connection go.
for _ in $(seq 1 50); do
  offset=$(curl -sS -I -H "Authorization: Bearer $TOK" -H "Tus-Resumable: 1.0.0" "$(jq -r .url "$state")" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "upload-offset" { print $2 }')
  [ "${offset:-0}" -gt 0 ] && break
  sleep 0.1
done
[ "${offset:-0}" -gt 0 ] || fail "the server kept nothing of the parked upload (offset ${offset:-none})"
[ "$offset" -lt "$SIZE" ] || fail "the upload finished before SIGTERM; the test proves nothing"

"$CUSTOS" push --watch "$DOCK" --settle 1 --server "$URL" --token "$TOK" --state-dir "$ST" \
  >"$T/out" 2>"$T/err2" &
WATCH_PID=$!
t_bg "$WATCH_PID"
for _ in $(seq 1 150); do
  [ -s "$T/out" ] && break
  sleep 0.1
done
assert_eq "$want $DOCK/big.bin" "$(cut -d' ' -f2- "$T/out")" "upload line after the restart"
assert_match "resuming upload .* at byte $offset of $SIZE" "$(cat "$T/err2")" "the second watcher resumed"
received=$(metric custos_upload_bytes_received_total)
[ "$received" -lt $((SIZE + offset / 2)) ] || fail "server received $received bytes: not resumed"
assert_eq 1 "$(metric custos_uploads_started_total)" "uploads created"
kill -TERM "$WATCH_PID"
rc=0; wait "$WATCH_PID" || rc=$?
assert_eq 0 "$rc" "second watcher exit status"
t_stop_server
