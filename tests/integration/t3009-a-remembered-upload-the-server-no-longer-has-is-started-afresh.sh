#!/usr/bin/env bash
# t3009: when the upload a previous run remembered is gone from the server
# (terminated: HEAD 410) or unknown to it (HEAD 404), push forgets it,
# creates a new upload and completes that one with the right SHA-256.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device cam-1)
ST="$T/state"
F="$T/clip.bin"
t_noise $((4 * 1024 * 1024)) "$F"
want=$(sha256sum "$F" | cut -d' ' -f1)
push() { "$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" "$@"; }

# Interrupt a push so its URL is remembered.
"$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --max-rate 1000000 "$F" >/dev/null 2>&1 &
PUSH_PID=$!
t_bg "$PUSH_PID"
for _ in $(seq 1 100); do
  [ "$(metric custos_upload_bytes_received_total)" -ge 500000 ] && break
  sleep 0.1
done
kill -KILL "$PUSH_PID"
wait "$PUSH_PID" 2>/dev/null || true
state=$(ls "$ST"/uploads/*.json)
old_url=$(jq -r .url "$state")

# 410: the upload was terminated meanwhile.
for _ in $(seq 1 50); do
  st=$(curl -sS -o "$T/del" -w "%{http_code}" -X DELETE -H "Authorization: Bearer $TOK" \
    -H "Tus-Resumable: 1.0.0" "$old_url")
  [ "$st" = 204 ] && break
  sleep 0.1 # 423 while the server still holds the killed request
done
assert_eq 204 "$st" "terminating the remembered upload ($(cat "$T/del"))"
out=$(push "$F" 2>"$T/err")
read -r id got _ <<<"$out"
assert_eq "$want" "$got" "sha256 after a gone upload"
upload_id=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .upload_id)
[ "$upload_id" != "$(basename "$old_url")" ] || fail "the evidence claims the terminated upload"
assert_eq 2 "$(metric custos_uploads_started_total)" "uploads created"

# 404: a remembered URL the server never issued.
touch -d '2020-01-01 00:00:00' "$F" # a new fingerprint: the file is not "done"
"$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --max-rate 1000000 "$F" >/dev/null 2>&1 &
PUSH_PID=$!
t_bg "$PUSH_PID"
sleep 1
kill -KILL "$PUSH_PID"
wait "$PUSH_PID" 2>/dev/null || true
state=$(ls "$ST"/uploads/*.json)
jq --arg u "$URL/v1/uploads/01a00000-0000-7000-8000-000000000000" '.url = $u' "$state" >"$state.new"
mv "$state.new" "$state"
out=$(push "$F" 2>"$T/err")
assert_eq "$want" "$(cut -d' ' -f2 <<<"$out")" "sha256 after an unknown upload"
assert_match 'no longer knows upload .*01a00000-0000-7000-8000-000000000000 \(404\)' "$(cat "$T/err")" \
  "the unknown upload is reported"
assert_eq 4 "$(metric custos_uploads_started_total)" "uploads created"
assert_eq 0 "$(find "$ST/uploads" -name '*.json' | wc -l)" "remembered uploads after success"
t_stop_server
