#!/usr/bin/env bash
# t2004: on a small disk, an upload that would eat into --reserve or past the
# free space gets 507 with a JSON body, the spool keeps nothing past the
# durable offset of the refused upload, the server stays up, and small
# uploads still succeed; also when the disk really fills (--reserve 0).
#
# The whole home is a 48 MiB tmpfs (spool and objects must share one file
# system), so this needs root and a working `mount -t tmpfs`; else it is
# skipped (exit 77).
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
RESERVE=$((8 * MIB))
t_small_disk 48m

t_start_server --reserve "$RESERVE"
REC=$(t_token recorder --device cam-5)
[ -n "$REC" ] || fail "could not create a recorder token"
. "$(dirname "$0")/lib_disk.sh"
# The index takes its share of the disk (a new write-ahead log) on the first
# write after a start: make that happen before measuring the free space.
warm_up() { [ -n "$(t_token recorder --device cam-warm)" ] || fail "token after restart"; }

# ---- (a) an upload larger than the free space is refused at creation ----
free=$(free_bytes)
echo "free space with an empty archive: $free bytes (reserve $RESERVE)"
r=$(create $((free + MIB)) huge.bin)
assert_507_json "${r%% *}" "$T/b.post" "POST larger than the free space"
assert_match '^application/json' "$(t_header Content-Type "$T/h.post")" "Content-Type of the 507"
r=$(create $((free - RESERVE / 2)) reserve.bin)
assert_507_json "${r%% *}" "$T/b.post" "POST that would eat into the reserve"
assert_eq "" "$(ls -A "$S")" "spool after refused creations"

# ---- (b) two uploads that fit one at a time but not together -------------
room=$((free - RESERVE))
# (A negative size would have head copy /dev/urandom without end.)
[ "$room" -gt $((8 * MIB)) ] || fail "only $free bytes free on the $MNT tmpfs after start-up: too little to test with"
L=$((room * 6 / 10))
t_noise "$L" "$T/a.bin"
t_noise "$L" "$T/b.bin"
head -c "$MIB" "$T/b.bin" >"$T/b.1"
tail -c +$((MIB + 1)) "$T/b.bin" >"$T/b.2"
r=$(create "$L" a.bin)
assert_eq 201 "${r%% *}" "POST of upload A ($L bytes)"
A=${r#* }
r=$(create "$L" b.bin)
assert_eq 201 "${r%% *}" "POST of upload B ($L bytes)"
B=${r#* }
assert_eq 204 "$(patch "$B" "$T/b.1" 0)" "first MiB of B"
assert_eq 204 "$(patch "$A" "$T/a.bin" 0)" "all of A"
assert_eq "$(sha256sum "$T/a.bin" | cut -d' ' -f1)" "$(t_header Custos-SHA256 "$T/h.$A")" "hash of A"

st=$(patch "$B" "$T/b.2" "$MIB")
if [ "$st" = 000 ]; then
  # The server answers at once and closes the connection; curl, still
  # sending the body, sometimes sees the reset before the answer. The
  # server's own log then says what it answered.
  grep -q "PATCH /v1/uploads/$B -> 507" "$SERVER_LOG" ||
    fail "PATCH of the rest of B with Content-Length: curl got no answer, and the server logged no 507"
else
  assert_507_json "$st" "$T/b.$B" "PATCH of the rest of B with Content-Length"
fi
assert_eq "$MIB" "$(head_offset "$B")" "B's offset after the 507"
assert_eq "$MIB" "$(spool_size "$B")" "B's spool file after the 507"

# Chunked: the size is not known in advance, so the disk fills while the
# body arrives; what B wrote past its durable offset must go.
failed0=$(metric custos_uploads_failed_total)
st=$(patch "$B" - "$MIB" -H "Transfer-Encoding: chunked" <"$T/b.2")
if [ "$st" != 000 ]; then assert_507_json "$st" "$T/b.$B" "chunked PATCH of the rest of B"; fi
assert_eq "$MIB" "$(head_offset "$B")" "B's offset after the chunked PATCH"
[ "$(spool_size "$B")" -le "$MIB" ] || fail "B's spool file kept $(spool_size "$B") bytes, past its durable offset $MIB"
[ "$(metric custos_uploads_failed_total)" -gt "$failed0" ] || fail "custos_uploads_failed_total did not count the full disk"
[ "$(free_bytes)" -gt $((RESERVE + 2 * MIB)) ] || fail "free space $(free_bytes) was not given back after the 507"
small_upload_works "after B was refused"

# Terminating B gives its first MiB back.
st=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "${TUS[@]}" "$URL/v1/uploads/$B")
assert_eq 204 "$st" "DELETE of B"
assert_eq "" "$(ls -A "$S")" "spool after B was terminated"

# ---- (c) the disk really fills up (no reserve) ---------------------------
t_stop_server
t_start_server --reserve 0
warm_up
free=$(free_bytes)
[ "$free" -gt $((4 * MIB)) ] || fail "only $free bytes free on the $MNT tmpfs: too little to test with"
L=$((free - 4096))
t_noise "$L" "$T/e.bin"
head -c "$MIB" "$T/e.bin" >"$T/e.1"
tail -c +$((MIB + 1)) "$T/e.bin" >"$T/e.2"
r=$(create "$L" e.bin); E=${r#* }
assert_eq 201 "${r%% *}" "POST of upload E (all the free space)"
assert_eq 204 "$(patch "$E" "$T/e.1" 0)" "first MiB of E"
t_noise $((2 * MIB)) "$T/filler.bin"
r=$(create $((2 * MIB)) filler.bin); F=${r#* }
assert_eq 204 "$(patch "$F" "$T/filler.bin" 0)" "a 2 MiB upload that leaves E no room"
st=$(patch "$E" - "$MIB" -H "Transfer-Encoding: chunked" <"$T/e.2")
if [ "$st" != 000 ]; then assert_507_json "$st" "$T/b.$E" "chunked PATCH that fills the disk"; fi
assert_eq "$MIB" "$(head_offset "$E")" "E's offset after the disk filled"
[ "$(spool_size "$E")" -le "$MIB" ] || fail "E's spool file kept $(spool_size "$E") bytes past its durable offset"
small_upload_works "after the disk filled"
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
