#!/usr/bin/env bash
# t2000: a server killed with SIGKILL in the middle of a long PATCH reports,
# after a restart, a durable offset at a 64 MiB checkpoint that is no more than
# the bytes sent, and the upload resumes from there to the right SHA-256.
#
# One PATCH of a 200 MiB file is sent slowly (curl --limit-rate) so it is in
# flight; the server is killed once HEAD shows that a checkpoint was recorded,
# restarted on the same port (a later --listen overrides the one lib.sh
# passes), killed again during the resumed PATCH, and then the rest is sent.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
CKPT=$((64 * MIB)) # CU_CHECKPOINT_BYTES
SIZE=$((200 * MIB))

t_start_server
REC=$(t_token recorder --device cam-1)
[ -n "$REC" ] || fail "could not create a recorder token"
TUS=(-H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $REC")

# HEAD: prints "STATUS OFFSET".
head_upload() {
  curl -sS -o /dev/null -D "$T/h.head" -w '%{http_code}' -I "${TUS[@]}" "$URL/v1/uploads/$ID" >"$T/s.head" || true
  echo "$(cat "$T/s.head") $(t_header Upload-Offset "$T/h.head")"
}
spool_size() { stat -c %s "$HOME_DIR/spool/$ID.part"; }

t_noise "$SIZE" "$T/file.bin"
WANT=$(sha256sum "$T/file.bin" | cut -d' ' -f1)

st=$(curl -sS -o /dev/null -D "$T/h.post" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $SIZE" \
  -H "Upload-Metadata: filename $(b64 big.bin),device_id $(b64 cam-1)" "$URL/v1/uploads")
assert_eq 201 "$st" "POST /v1/uploads"
LOC=$(t_header Location "$T/h.post")
ID=${LOC##*/}
assert_match '^[0-9a-f-]{36}$' "$ID" "upload id from Location"

# Starts a PATCH of file $1 at offset $2, at most $3 bytes/s, in the background.
slow_patch() {
  curl -sS -o /dev/null -w '%{http_code} %{size_upload}\n' -X PATCH "${TUS[@]}" -H "Expect:" \
    -H "Upload-Offset: $2" -H "Content-Type: application/offset+octet-stream" \
    --limit-rate "$3" -T "$1" "$URL/v1/uploads/$ID" >"$T/patch.out" 2>"$T/patch.err" &
  CURL_PID=$!
}

# Polls HEAD until the offset passes $1; prints it. Gives up after 40 s.
wait_offset_above() {
  local off=0 r
  for _ in $(seq 1 400); do
    r=$(head_upload)
    off=${r#* }
    [ "${r%% *}" = 200 ] || fail "HEAD during the PATCH: $r"
    # Never an offset for bytes that are not in the spool file.
    [ "$(spool_size)" -ge "${off:-0}" ] || fail "HEAD reported $off but the spool file has $(spool_size) bytes"
    [ "${off:-0}" -gt "$1" ] && { echo "$off"; return; }
    kill -0 "$CURL_PID" 2>/dev/null || fail "the PATCH ended before a checkpoint: $(cat "$T/patch.out" "$T/patch.err")"
    sleep 0.1
  done
  fail "no checkpoint above $1 was recorded within 40 s"
}

# ---- first kill, during the first PATCH -----------------------------------
slow_patch "$T/file.bin" 0 30M
seen=$(wait_offset_above 0)
t_kill_server
wait "$CURL_PID" || true
sent=$(cut -d' ' -f2 "$T/patch.out")
assert_match '^[0-9]+$' "$sent" "curl's count of bytes sent"
[ "$sent" -lt "$SIZE" ] || fail "the PATCH finished before the kill (sent $sent)"

old_port=$PORT
t_start_server --listen "127.0.0.1:$old_port"
assert_eq "$old_port" "$PORT" "the restarted server's port (a later --listen wins)"

r=$(head_upload)
assert_eq 200 "${r%% *}" "HEAD after kill -9"
off1=${r#* }
assert_match '^[0-9]+$' "$off1" "Upload-Offset after kill -9"
[ "$off1" -gt 0 ] || fail "no durable offset survived kill -9 (a checkpoint was seen at $seen)"
[ "$off1" -ge "$seen" ] || fail "durable offset went back: HEAD said $seen before the kill, $off1 after"
[ "$off1" -le "$sent" ] || fail "offset $off1 is past the $sent bytes the client sent"
echo "first kill: HEAD showed $seen, client sent $sent, durable offset after restart $off1, spool $(spool_size)"
assert_eq 0 $((off1 % CKPT)) "offset $off1 is a multiple of the 64 MiB checkpoint"
[ "$(spool_size)" -ge "$off1" ] || fail "spool file ($(spool_size) bytes) is shorter than durable offset $off1"
# The rest of the upload's state survived too: length, metadata, owner.
assert_eq "$SIZE" "$(t_header Upload-Length "$T/h.head")" "Upload-Length after kill -9"
assert_eq "filename $(b64 big.bin),device_id $(b64 cam-1)" "$(t_header Upload-Metadata "$T/h.head")" \
  "Upload-Metadata after kill -9"
OTHER=$(t_token recorder --device cam-1)
st=$(curl -sS -o /dev/null -w '%{http_code}' -I -H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $OTHER" \
  "$URL/v1/uploads/$ID")
assert_eq 403 "$st" "HEAD with another recorder's token after kill -9"

# An empty PATCH at the durable offset is accepted and cuts off what was
# never acknowledged.
st=$(curl -sS -o /dev/null -D "$T/h.empty" -w '%{http_code}' -X PATCH "${TUS[@]}" -H "Upload-Offset: $off1" \
  -H "Content-Type: application/offset+octet-stream" -H "Content-Length: 0" "$URL/v1/uploads/$ID")
assert_eq 204 "$st" "empty PATCH at the durable offset"
assert_eq "$off1" "$(t_header Upload-Offset "$T/h.empty")" "Upload-Offset after an empty PATCH"
assert_eq "$off1" "$(spool_size)" "spool file size once a PATCH has opened it"

# A PATCH at a stale offset is refused.
st=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH "${TUS[@]}" -H "Upload-Offset: 0" \
  -H "Content-Type: application/offset+octet-stream" --data-binary "x" "$URL/v1/uploads/$ID")
assert_eq 409 "$st" "PATCH at offset 0 after resuming"

# ---- second kill, during the resumed PATCH --------------------------------
tail -c +$((off1 + 1)) "$T/file.bin" >"$T/rest1.bin"
slow_patch "$T/rest1.bin" "$off1" 30M
seen=$(wait_offset_above "$off1")
t_kill_server
wait "$CURL_PID" || true
sent2=$(cut -d' ' -f2 "$T/patch.out")
t_start_server --listen "127.0.0.1:$old_port"
r=$(head_upload)
assert_eq 200 "${r%% *}" "HEAD after the second kill -9"
off2=${r#* }
[ "$off2" -ge "$seen" ] || fail "durable offset went back: $seen before the second kill, $off2 after"
[ "$off2" -le $((off1 + sent2)) ] || fail "offset $off2 is past the $((off1 + sent2)) bytes sent"
echo "second kill: HEAD showed $seen, client sent $sent2 from $off1, durable offset after restart $off2"
assert_eq 0 $(((off2 - off1) % CKPT)) "progress $((off2 - off1)) of the resumed PATCH is whole checkpoints"

# ---- the rest, at full speed ----------------------------------------------
tail -c +$((off2 + 1)) "$T/file.bin" >"$T/rest2.bin"
st=$(curl -sS -o /dev/null -D "$T/h.last" -w '%{http_code}' -X PATCH "${TUS[@]}" -H "Expect:" \
  -H "Upload-Offset: $off2" -H "Content-Type: application/offset+octet-stream" -T "$T/rest2.bin" "$URL/v1/uploads/$ID")
assert_eq 204 "$st" "final PATCH"
assert_eq "$SIZE" "$(t_header Upload-Offset "$T/h.last")" "Upload-Offset after the final PATCH"
assert_eq "$WANT" "$(t_header Custos-SHA256 "$T/h.last")" "Custos-SHA256 of the resumed upload"
EVID=$(t_header Custos-Evidence-Id "$T/h.last")
assert_match '^[0-9a-f-]{36}$' "$EVID" "Custos-Evidence-Id"

obj="$HOME_DIR/objects/sha256/${WANT:0:2}/${WANT:2:2}/$WANT"
[ -f "$obj" ] || fail "object $obj is missing"
assert_eq 444 "$(stat -c %a "$obj")" "object mode"
assert_eq "$WANT" "$(sha256sum "$obj" | cut -d' ' -f1)" "object content hash"
[ ! -e "$HOME_DIR/spool/$ID.part" ] || fail "spool file still there after completion"
out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$EVID")
assert_eq 200 "$(t_status "$out")" "GET evidence"
assert_eq "$WANT" "$(t_body "$out" | jq -r .sha256)" "evidence sha256"
assert_eq "$SIZE" "$(t_body "$out" | jq -r .size)" "evidence size"
r=$(head_upload)
assert_eq "200 $SIZE" "$r" "HEAD after completion"
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
