#!/usr/bin/env bash
# t3003: push --watch uploads a recording written slowly into the dock
# folder only once its writer closes it, a file that was there before it
# started (after it settles), a file moved into a new subfolder, and
# nothing whose name starts with '.'; each exactly once, also across a
# restart of the watcher, which stops with exit 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device dock-1)
ST="$T/state"
DOCK="$T/dock"
mkdir -p "$DOCK"
sha() { sha256sum "$1" | cut -d' ' -f1; }
# Waits up to $2 seconds for a line ending in path $1 on the watcher's stdout.
wait_line() {
  for _ in $(seq 1 $(($2 * 10))); do
    grep -q " $1\$" "$T/out" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "no upload line for $1 within $2 s; stderr: $(cat "$T/err")"
}
start_watch() {
  "$CUSTOS" push --watch "$DOCK" --settle 2 --server "$URL" --token "$TOK" --state-dir "$ST" \
    >>"$T/out" 2>>"$T/err" &
  WATCH_PID=$!
  t_bg "$WATCH_PID"
}
stop_watch() {
  kill -TERM "$WATCH_PID"
  local rc=0
  wait "$WATCH_PID" || rc=$?
  assert_eq 0 "$rc" "watcher exit status after SIGTERM"
}

t_noise 300000 "$DOCK/before.bin"
echo "partial" >"$DOCK/.recording.tmp"
start_watch

# A recording written in pieces, half a second apart, on one descriptor:
# the folder rescans every 2 s and must not take it while it grows.
t_make_mp4 "$T/src.mp4" 2
size=$(stat -c %s "$T/src.mp4")
piece=$(((size + 3) / 4))
exec 3>"$DOCK/clip1.mp4"
for i in 0 1 2 3; do
  dd if="$T/src.mp4" bs="$piece" skip="$i" count=1 status=none >&3
  sleep 0.6
done
sleep 0.6
grep -q 'clip1.mp4$' "$T/out" && fail "clip1.mp4 was uploaded before its writer closed it"
exec 3>&-
wait_line "$DOCK/clip1.mp4" 10
assert_eq "$(sha "$T/src.mp4")" "$(grep 'clip1.mp4$' "$T/out" | cut -d' ' -f2)" "clip1 sha256"

# There before the start: found by the rescan once stable.
wait_line "$DOCK/before.bin" 10
assert_eq "$(sha "$DOCK/before.bin")" "$(grep 'before.bin$' "$T/out" | cut -d' ' -f2)" "before.bin sha256"

# A new subfolder, and a file moved into it (IN_MOVED_TO).
mkdir "$DOCK/day2"
sleep 0.3
t_noise 200000 "$T/moved.bin"
mv "$T/moved.bin" "$DOCK/day2/moved.bin"
wait_line "$DOCK/day2/moved.bin" 10

# Twice the settle time later, nothing was uploaded twice.
sleep 5
assert_eq 3 "$(wc -l <"$T/out")" "upload lines"
assert_eq 3 "$(metric custos_uploads_started_total)" "uploads created on the server"
grep -q 'recording.tmp' "$T/out" && fail "a dot-file was uploaded"

# The server holds each with the printed id and hash.
while read -r id s p; do
  assert_eq "$s" "$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .sha256)" \
    "server's record for $p"
  assert_eq dock-1 "$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .device_id)" \
    "device of $p"
done <"$T/out"

# A restarted watcher remembers what it uploaded (done-markers).
stop_watch
start_watch
sleep 5
assert_eq 3 "$(wc -l <"$T/out")" "upload lines after a restart"
assert_eq 3 "$(metric custos_uploads_started_total)" "uploads created after a restart"
[ -f "$DOCK/clip1.mp4" ] || fail "a file was deleted without --delete-after-verify"
stop_watch
t_stop_server
