#!/usr/bin/env bash
# t2009: a PATCH refused half-way because the disk reached --reserve drops the
# bytes it wrote when it is refused, not when its client finally stops
# sending: the space comes back while the refused body is still arriving.
#
# The whole home is a 28 MiB tmpfs (spool and objects must share one file
# system), so this needs root and a working `mount -t tmpfs`; else it is
# skipped (exit 77).
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
RESERVE=$((8 * MIB))
t_small_disk 28m

t_start_server --reserve "$RESERVE"
REC=$(t_token recorder --device cam-5)
[ -n "$REC" ] || fail "could not create a recorder token"
. "$(dirname "$0")/lib_disk.sh"

# D (0.9 of the room) is sent slowly; C (0.6), sent fast while D is in
# flight, takes the room D still needs. D's writes are then refused, and the
# bytes it wrote must be dropped when that happens, not when its client
# finally stops sending: otherwise they keep the disk full (and every other
# upload refused) for as long as the refused body takes to arrive.
free=$(free_bytes)
room=$((free - RESERVE))
# (A negative size would have head copy /dev/urandom without end.)
[ "$room" -gt $((8 * MIB)) ] || fail "only $free bytes free on the $MNT tmpfs after start-up: too little to test with"

LD=$((room * 9 / 10))
LC=$((room * 6 / 10))
t_noise "$LD" "$T/d.bin"
t_noise "$LC" "$T/c.bin"
r=$(create "$LD" d.bin); D=${r#* }
assert_eq 201 "${r%% *}" "POST of upload D"
r=$(create "$LC" c.bin); C=${r#* }
assert_eq 201 "${r%% *}" "POST of upload C"
patch "$D" "$T/d.bin" 0 --limit-rate 1536K >"$T/st.d" &
pd=$!
for _ in $(seq 1 200); do
  [ "$(spool_size "$D")" -ge $((room * 3 / 10)) ] && break
  sleep 0.05
done
[ "$(spool_size "$D")" -ge $((room * 3 / 10)) ] ||
  fail "D did not get going: spool $(spool_size "$D"), room $room, free $(free_bytes), curl: $(cat "$T/st.d" "$T/curl.err" "$T/b.$D" 2>/dev/null)"
assert_eq 204 "$(patch "$C" "$T/c.bin" 0)" "PATCH of C while D is in flight"
assert_eq "$(sha256sum "$T/c.bin" | cut -d' ' -f1)" "$(t_header Custos-SHA256 "$T/h.$C")" "hash of C"
# Wait for D to reach the reserve, then give the server 1.5 s to drop its bytes.
for _ in $(seq 1 100); do
  [ "$(free_bytes)" -lt $((RESERVE + MIB)) ] && break
  sleep 0.05
done
hit=$(date +%s%N)
dropped=no inflight=no
for _ in $(seq 1 30); do
  if [ ! -e "$S/$D.part" ] || [ "$(spool_size "$D")" = 0 ]; then dropped=yes; break; fi
  sleep 0.05
done
kill -0 "$pd" 2>/dev/null && inflight=yes
held=$(spool_size "$D" 2>/dev/null || echo 0)
wait "$pd" || true
std=$(cat "$T/st.d")
echo "D ($LD bytes at 1.5 MiB/s) -> $std; 1.5 s after the disk reached the reserve $held bytes of it" \
  "were spooled (body still arriving: $inflight); D ended $((($(date +%s%N) - hit) / 1000000)) ms after that"
[ "$std" = 000 ] || assert_507_json "$std" "$T/b.$D" "PATCH of D"
assert_eq 0 "$(head_offset "$D")" "D's offset after the refusal"
assert_eq 0 "$(spool_size "$D")" "D's spool file after the refusal"
small_upload_works "after D was refused"
if [ "$dropped" = no ]; then
  [ "$inflight" = yes ] || fail "inconclusive: D's body ended less than 1.5 s after the disk reached the reserve"
  fail "D's refused bytes ($held) were still on disk 1.5 s after its writes were refused, while its body was still arriving"
fi
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
