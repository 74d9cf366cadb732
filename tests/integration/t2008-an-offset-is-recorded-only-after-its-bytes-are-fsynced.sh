#!/usr/bin/env bash
# t2008: the server records an upload offset (a write to the index's
# write-ahead log) only when every byte it wrote to that upload's spool file
# has been fdatasync'ed, both at the 64 MiB checkpoints inside a PATCH and at
# its end, and it links an object into the store only after the spool file
# was synced, and syncs the object's directory before the evidence is
# recorded.
#
# A kill -9 cannot show this (the page cache survives a process crash), so
# the system calls are watched with strace. Skipped (77) without strace or
# ptrace.
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || { echo "SKIP: strace is not installed" >&2; exit 77; }
MIB=$((1024 * 1024))
SIZE=$((136 * MIB + 777)) # two checkpoints inside the first PATCH, then its end

t_start_server
REC=$(t_token recorder --device cam-9)
[ -n "$REC" ] || fail "could not create a recorder token"
TUS=(-H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $REC")

t_noise "$SIZE" "$T/file.bin"
WANT=$(sha256sum "$T/file.bin" | cut -d' ' -f1)
FIRST=$((130 * MIB + 12345))
head -c "$FIRST" "$T/file.bin" >"$T/part1"
tail -c +$((FIRST + 1)) "$T/file.bin" >"$T/part2"

strace -f -y -o "$T/trace" -e trace=pwrite64,pwritev,pwritev2,write,writev,fdatasync,fsync,link,linkat,rename,renameat,renameat2 \
  -p "$SERVER_PID" 2>"$T/strace.err" &
STRACE_PID=$!
for _ in $(seq 1 200); do
  grep -q 'attached' "$T/strace.err" && break
  kill -0 "$STRACE_PID" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q 'attached' "$T/strace.err"; then
  kill "$STRACE_PID" 2>/dev/null || true
  echo "SKIP: strace cannot attach to the server here: $(head -n 3 "$T/strace.err")" >&2
  exit 77
fi
sleep 0.2 # every thread

st=$(curl -sS -o /dev/null -D "$T/h.post" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $SIZE" \
  -H "Upload-Metadata: filename $(b64 synced.bin),device_id $(b64 cam-9)" "$URL/v1/uploads")
assert_eq 201 "$st" "POST"
ID=$(t_header Location "$T/h.post")
ID=${ID##*/}
st=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH "${TUS[@]}" "${OCT[@]}" -H "Expect:" -H "Upload-Offset: 0" \
  -T "$T/part1" "$URL/v1/uploads/$ID")
assert_eq 204 "$st" "first PATCH (130 MiB)"
st=$(curl -sS -o /dev/null -D "$T/h.last" -w '%{http_code}' -X PATCH "${TUS[@]}" "${OCT[@]}" -H "Expect:" \
  -H "Upload-Offset: $FIRST" -T "$T/part2" "$URL/v1/uploads/$ID")
assert_eq 204 "$st" "last PATCH"
assert_eq "$WANT" "$(t_header Custos-SHA256 "$T/h.last")" "SHA-256"
sleep 0.3
kill "$STRACE_PID" 2>/dev/null || true
wait "$STRACE_PID" 2>/dev/null || true

# Reads the trace in order of events: a write to a spool file makes it
# dirty when it starts; an fsync/fdatasync of it makes it clean when it
# returns 0. A write to the index's log (a record) must find this upload's
# spool file clean, and every directory an object was linked into synced.
awk -v spool="/spool/$ID.part>" '
  function on_start(l) {
    if (l ~ /^[0-9]+ +pwrite(64|v|v2)?\(/ && index(l, spool)) { dirty = 1; writes++ }
    if (l ~ /^[0-9]+ +(write|writev|pwrite64)\([0-9]+<[^>]*\/index\/[^>]*\.log>/) {
      records++
      if (dirty) { printf "record written while the spool file had unsynced writes: %s\n", substr(l, 1, 160); bad++ }
      for (d in unsynced) { printf "record written before the object directory %s was synced\n", d; bad++; delete unsynced[d] }
      if (writes && !dirty) synced_records++
    }
    if (l ~ /^[0-9]+ +link(at)?\(/ && index(l, "/objects/sha256/")) {
      links++
      if (dirty || !syncs) { printf "object linked before its spool file was synced: %s\n", substr(l, 1, 160); bad++ }
      m = l; sub(/^[^,]*, *"/, "", m); sub(/".*$/, "", m); sub(/\/[^\/]*$/, "", m); unsynced[m] = 1
    }
  }
  function on_end(l, res) {
    if (l ~ /^[0-9]+ +f(data)?sync\(/ && res ~ /= 0$/) {
      if (index(l, spool)) { dirty = 0; syncs++ }
      for (d in unsynced) if (index(l, "<" d ">")) delete unsynced[d]
    }
  }
  {
    pid = $1
    if ($0 ~ /<unfinished \.\.\.>$/) { pend[pid] = $0; on_start($0); next }
    if ($0 ~ /<\.\.\. [a-z0-9_]+ resumed>/) { on_end(pend[pid], $0); delete pend[pid]; next }
    on_start($0); on_end($0, $0)
  }
  END {
    printf "spool writes %d, spool syncs %d, index records %d (%d after synced spool writes), object links %d\n",
      writes, syncs, records, synced_records, links
    if (!writes || !links) { print "the trace does not show the upload"; bad++ }
    # creation, two checkpoints, end of the first PATCH, completion (committing, completed)
    if (synced_records < 5) { print "fewer index records than checkpoints and PATCH ends"; bad++ }
    exit bad ? 1 : 0
  }' "$T/trace" >"$T/verdict" || fail "$(cat "$T/verdict")"
cat "$T/verdict"
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
