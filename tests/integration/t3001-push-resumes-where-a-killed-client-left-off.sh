#!/usr/bin/env bash
# t3001: a push killed with SIGKILL in the middle of a 20 MB file leaves its
# upload URL in the state directory; the next push of the same file HEADs
# it and continues from the server's durable offset instead of starting
# over (the server receives the file's bytes about once, not twice), and
# the result has the file's SHA-256.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device cam-1)
ST="$T/state"
F="$T/long-shift.bin"
SIZE=$((20 * 1024 * 1024))
t_noise "$SIZE" "$F"
want=$(sha256sum "$F" | cut -d' ' -f1)

# 2 MB/s: ten seconds for the whole file, so it is surely mid-file when
# the server has 3 MB.
"$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --max-rate 2000000 "$F" \
  >"$T/out1" 2>"$T/err1" &
PUSH_PID=$!
t_bg "$PUSH_PID"
for _ in $(seq 1 100); do
  [ "$(metric custos_upload_bytes_received_total)" -ge 3000000 ] && break
  sleep 0.1
done
kill -KILL "$PUSH_PID"
wait "$PUSH_PID" 2>/dev/null || true
[ -s "$T/out1" ] && fail "the killed push printed a result: $(cat "$T/out1")"

# The URL was remembered, and the server kept what it received.
state=$(ls "$ST"/uploads/*.json 2>/dev/null || true)
[ -n "$state" ] || fail "no remembered upload in $ST/uploads"
assert_eq 600 "$(stat -c %a "$state")" "remembered upload file mode"
upload_url=$(jq -r .url "$state")
assert_match "^$URL/v1/uploads/[0-9a-f-]{36}$" "$upload_url" "remembered URL"
offset=0
for _ in $(seq 1 50); do
  offset=$(curl -sS -I -H "Authorization: Bearer $TOK" -H "Tus-Resumable: 1.0.0" "$upload_url" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "upload-offset" { print $2 }')
  [ "${offset:-0}" -gt 0 ] && break
  sleep 0.1
done
[ "${offset:-0}" -ge 3000000 ] || fail "server's offset after the kill is ${offset:-none}, expected >= 3000000"
[ "$offset" -lt "$SIZE" ] || fail "the upload finished before the kill; the test proves nothing"

# Second run: resumes, finishes, prints the right hash.
out=$("$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" "$F" 2>"$T/err2")
read -r id got path <<<"$out"
assert_eq "$want" "$got" "printed sha256"
assert_eq "$F" "$path" "printed path"
assert_match "resuming upload .* at byte [0-9]+ of $SIZE" "$(cat "$T/err2")" "second run says it resumes"
server_sha=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .sha256)
assert_eq "$want" "$server_sha" "server's sha256"
assert_eq "$(basename "$upload_url")" \
  "$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .upload_id)" \
  "the evidence came from the first run's upload"

# Starting over would have made the server receive offset + SIZE bytes.
received=$(metric custos_upload_bytes_received_total)
[ "$received" -ge "$SIZE" ] || fail "server received $received bytes, fewer than the file"
[ "$received" -lt $((SIZE + offset / 2)) ] ||
  fail "server received $received bytes for a $SIZE-byte file resumed at $offset: not resumed"
assert_eq 1 "$(metric custos_uploads_started_total)" "uploads created"
assert_eq 0 "$(find "$ST/uploads" -name '*.json' | wc -l)" "remembered uploads after success"
t_stop_server
