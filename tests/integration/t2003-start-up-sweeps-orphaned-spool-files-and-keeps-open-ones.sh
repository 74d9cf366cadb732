#!/usr/bin/env bash
# t2003: at start-up the server removes every spool file that belongs to no
# open upload (stray names, ids with no record, completed and terminated
# uploads) and keeps the spool file of an open upload, whose unacknowledged
# tail is cut off when it resumes, so it completes with the right SHA-256.
. "$(dirname "$0")/lib.sh"

# The server log since the last log_mark (earlier starts stay in the file,
# so sanitizer reports from killed runs are not lost).
log_mark() { LOG_MARK=$(wc -l <"$SERVER_LOG"); }
log_since_mark() { tail -n +$((LOG_MARK + 1)) "$SERVER_LOG"; }

t_start_server
REC=$(t_token recorder --device cam-4)
[ -n "$REC" ] || fail "could not create a recorder token"
TUS=(-H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $REC")

create() {
  local st
  st=$(curl -sS -o /dev/null -D "$T/h.post" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $1" \
    -H "Upload-Metadata: filename $(b64 "$2"),device_id $(b64 cam-4)" "$URL/v1/uploads")
  assert_eq 201 "$st" "POST for $2"
  local loc
  loc=$(t_header Location "$T/h.post")
  echo "${loc##*/}"
}
# PATCH file $2 at offset $3 to upload $1; prints the status code.
patch_file() {
  curl -sS -o /dev/null -D "$T/h.patch" -w '%{http_code}' -X PATCH "${TUS[@]}" "${OCT[@]}" -H "Expect:" \
    -H "Upload-Offset: $3" --data-binary @"$2" "$URL/v1/uploads/$1"
}

SIZE=$((3 * 1024 * 1024 + 12345))
t_noise "$SIZE" "$T/open.bin"
WANT=$(sha256sum "$T/open.bin" | cut -d' ' -f1)
FIRST=$((1024 * 1024 + 777)) # an unaligned offset
head -c "$FIRST" "$T/open.bin" >"$T/open.1"
OPEN=$(create "$SIZE" open.bin)
assert_eq 204 "$(patch_file "$OPEN" "$T/open.1" 0)" "first PATCH of the open upload"

t_noise 5000 "$T/done.bin"
DONE=$(create 5000 done.bin)
assert_eq 204 "$(patch_file "$DONE" "$T/done.bin" 0)" "PATCH of the completed upload"
DEL=$(create 5000 deleted.bin)
st=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "${TUS[@]}" "$URL/v1/uploads/$DEL")
assert_eq 204 "$st" "DELETE of an open upload"
[ ! -e "$HOME_DIR/spool/$DEL.part" ] || fail "DELETE left the spool file behind"
t_stop_server

# Orphans, as a crash or an operator might leave them.
S="$HOME_DIR/spool"
NOREC="${OPEN:0:24}000000000000" # a well-formed id that has no record
[ "$NOREC" != "$OPEN" ] || NOREC="${OPEN:0:24}111111111111"
orphans=("junk.part" "notes.txt" "$NOREC.part" "$DONE.part" "$DEL.part" "$OPEN.part.tmp" "${OPEN^^}.part")
for o in "${orphans[@]}"; do head -c 4096 /dev/urandom >"$S/$o"; done
# Bytes past the open upload's offset that were never acknowledged.
head -c 100000 /dev/urandom >>"$S/$OPEN.part"

log_mark
t_start_server
for o in "${orphans[@]}"; do
  [ ! -e "$S/$o" ] || fail "orphaned spool file $o survived the start-up"
done
assert_match "swept ${#orphans[@]} spool file" "$(log_since_mark)" "start-up log line about the sweep"
[ -e "$S/$OPEN.part" ] || fail "the open upload's spool file was swept"
[ "$(stat -c %s "$S/$OPEN.part")" -ge "$FIRST" ] || fail "the open upload's spool file lost durable bytes at start-up"

st=$(curl -sS -o /dev/null -D "$T/h.head" -w '%{http_code}' -I "${TUS[@]}" "$URL/v1/uploads/$OPEN")
assert_eq 200 "$st" "HEAD of the open upload after the restart"
assert_eq "$FIRST" "$(t_header Upload-Offset "$T/h.head")" "offset of the open upload after the restart"
tail -c +$((FIRST + 1)) "$T/open.bin" >"$T/open.2"
assert_eq 204 "$(patch_file "$OPEN" "$T/open.2" "$FIRST")" "PATCH resuming the open upload"
assert_eq "$WANT" "$(t_header Custos-SHA256 "$T/h.patch")" "SHA-256 of the resumed upload"
assert_eq "$WANT" "$(sha256sum "$HOME_DIR/objects/sha256/${WANT:0:2}/${WANT:2:2}/$WANT" | cut -d' ' -f1)" "object hash"

# The completed and the terminated uploads are as they were.
st=$(curl -sS -o /dev/null -D "$T/h.head" -w '%{http_code}' -I "${TUS[@]}" "$URL/v1/uploads/$DONE")
assert_eq 200 "$st" "HEAD of the completed upload"
assert_eq 5000 "$(t_header Upload-Offset "$T/h.head")" "offset of the completed upload"
st=$(curl -sS -o /dev/null -w '%{http_code}' -I "${TUS[@]}" "$URL/v1/uploads/$DEL")
assert_match '^(404|410)$' "$st" "HEAD of the terminated upload"
assert_eq "" "$(ls -A "$S")" "spool directory after everything finished"

# A restart with nothing to sweep sweeps nothing.
t_stop_server
log_mark
t_start_server
if log_since_mark | grep -q 'swept'; then fail "a clean start swept something: $(log_since_mark | grep swept)"; fi
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
