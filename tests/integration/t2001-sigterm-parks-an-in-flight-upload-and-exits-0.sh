#!/usr/bin/env bash
# t2001: SIGTERM during slow PATCHes stops new connections at once, lets a
# PATCH that ends within the grace period finish as evidence, exits 0, parks
# the long upload at a durable offset that covers every byte received before
# the signal, and that upload then resumes to the right SHA-256; SIGINT stops
# the server cleanly too.
#
# The PATCH is sent at 5 MiB/s and the signal comes once about 8 MiB are in
# the spool file, so the 64 MiB checkpoint is never reached: a non-zero
# offset after the restart can only come from the shutdown parking it.
. "$(dirname "$0")/lib.sh"

# The server log since the last log_mark (earlier starts stay in the file,
# so sanitizer reports from killed runs are not lost).
log_mark() { LOG_MARK=$(wc -l <"$SERVER_LOG"); }
log_since_mark() { tail -n +$((LOG_MARK + 1)) "$SERVER_LOG"; }

MIB=$((1024 * 1024))
SIZE=$((96 * MIB))

t_start_server
REC=$(t_token recorder --device cam-2)
[ -n "$REC" ] || fail "could not create a recorder token"
TUS=(-H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $REC")
head_upload() {
  curl -sS -o /dev/null -D "$T/h.head" -w '%{http_code}' -I "${TUS[@]}" "$URL/v1/uploads/$ID" >"$T/s.head" || true
  echo "$(cat "$T/s.head") $(t_header Upload-Offset "$T/h.head")"
}

t_noise "$SIZE" "$T/file.bin"
WANT=$(sha256sum "$T/file.bin" | cut -d' ' -f1)
st=$(curl -sS -o /dev/null -D "$T/h.post" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $SIZE" \
  -H "Upload-Metadata: filename $(b64 term.bin),device_id $(b64 cam-2)" "$URL/v1/uploads")
assert_eq 201 "$st" "POST /v1/uploads"
LOC=$(t_header Location "$T/h.post")
ID=${LOC##*/}

curl -sS -o /dev/null -w '%{http_code} %{size_upload}\n' -X PATCH "${TUS[@]}" -H "Expect:" \
  -H "Upload-Offset: 0" -H "Content-Type: application/offset+octet-stream" \
  --limit-rate 5M -T "$T/file.bin" "$URL/v1/uploads/$ID" >"$T/patch.out" 2>"$T/patch.err" &
CURL_PID=$!

# What the server has written to the spool before the signal: parking must
# keep at least that much.
spool_size() { stat -c %s "$HOME_DIR/spool/$ID.part"; }
got=0
for _ in $(seq 1 200); do
  got=$(spool_size)
  [ "$got" -ge $((8 * MIB)) ] && break
  sleep 0.05
done
[ "$got" -ge $((8 * MIB)) ] || fail "the PATCH did not get going (spooled $got bytes in 10 s)"
r=$(head_upload)
assert_eq "200 0" "$r" "HEAD while the PATCH is in flight, before any checkpoint"

# A short upload, 6 MiB at 3 MiB/s: it ends within the 5 s grace period.
t_noise $((6 * MIB)) "$T/short.bin"
SHORT_SHA=$(sha256sum "$T/short.bin" | cut -d' ' -f1)
st=$(curl -sS -o /dev/null -D "$T/h.post2" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $((6 * MIB))" \
  -H "Upload-Metadata: filename $(b64 short.bin),device_id $(b64 cam-2)" "$URL/v1/uploads")
assert_eq 201 "$st" "POST of the short upload"
SHORT=$(t_header Location "$T/h.post2")
SHORT=${SHORT##*/}
curl -sS -o /dev/null -D "$T/h.short" -w '%{http_code}' -X PATCH "${TUS[@]}" -H "Expect:" \
  -H "Upload-Offset: 0" -H "Content-Type: application/offset+octet-stream" \
  --limit-rate 3M -T "$T/short.bin" "$URL/v1/uploads/$SHORT" >"$T/short.out" 2>&1 &
SHORT_PID=$!
sleep 0.3

t0=$(date +%s%N)
kill -TERM "$SERVER_PID"
sleep 0.5
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited within 0.5 s, before the upload was parked by the grace period"
rc=0
curl -sS -o /dev/null --max-time 2 "$URL/healthz" 2>/dev/null || rc=$?
assert_eq 7 "$rc" "curl exit code for a new connection during shutdown (7: refused)"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq 0 "$rc" "server exit status after SIGTERM with an upload in flight"
[ "$ms" -lt 15000 ] || fail "shutdown took $ms ms"
grep -q 'stopped cleanly' "$SERVER_LOG" || fail "server log does not say it stopped cleanly"
wait "$CURL_PID" || true
wait "$SHORT_PID" || true
assert_eq 204 "$(cat "$T/short.out")" "the short PATCH that ended within the grace period"
assert_eq "$SHORT_SHA" "$(t_header Custos-SHA256 "$T/h.short")" "hash of the short upload"
SHORT_EV=$(t_header Custos-Evidence-Id "$T/h.short")
sent=$(cut -d' ' -f2 "$T/patch.out")
assert_match '^[0-9]+$' "$sent" "curl's count of bytes sent"
[ "$sent" -lt "$SIZE" ] || fail "the PATCH finished before shutdown (sent $sent): slow it down"

t_start_server
out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$SHORT_EV")
assert_eq 200 "$(t_status "$out")" "evidence of the short upload after the restart"
assert_eq "$SHORT_SHA" "$(t_body "$out" | jq -r .sha256)" "sha256 of the short upload's evidence"
r=$(head_upload)
assert_eq 200 "${r%% *}" "HEAD after the restart"
off=${r#* }
echo "SIGTERM after $got bytes spooled; client sent $sent; parked at $off; shutdown took $ms ms"
[ "$off" -ge "$got" ] || fail "parked offset $off is below the $got bytes spooled before SIGTERM"
[ "$off" -le "$sent" ] || fail "parked offset $off is past the $sent bytes the client sent"
assert_eq "$off" "$(spool_size)" "spool file size of the parked upload"

tail -c +$((off + 1)) "$T/file.bin" >"$T/rest.bin"
st=$(curl -sS -o /dev/null -D "$T/h.last" -w '%{http_code}' -X PATCH "${TUS[@]}" -H "Expect:" \
  -H "Upload-Offset: $off" -H "Content-Type: application/offset+octet-stream" -T "$T/rest.bin" "$URL/v1/uploads/$ID")
assert_eq 204 "$st" "PATCH of the rest"
assert_eq "$SIZE" "$(t_header Upload-Offset "$T/h.last")" "Upload-Offset after the last PATCH"
assert_eq "$WANT" "$(t_header Custos-SHA256 "$T/h.last")" "Custos-SHA256 of the resumed upload"
obj="$HOME_DIR/objects/sha256/${WANT:0:2}/${WANT:2:2}/$WANT"
assert_eq "$WANT" "$(sha256sum "$obj" | cut -d' ' -f1)" "object content hash"
assert_eq 444 "$(stat -c %a "$obj")" "object mode"

# SIGINT (Ctrl-C in a terminal) is a clean stop too.
t_stop_server
t_start_server
log_mark
kill -INT "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
assert_eq 0 "$rc" "server exit status after SIGINT"
assert_match 'received SIGINT' "$(log_since_mark)" "log after SIGINT"
assert_match 'stopped cleanly' "$(log_since_mark)" "log after SIGINT"
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
