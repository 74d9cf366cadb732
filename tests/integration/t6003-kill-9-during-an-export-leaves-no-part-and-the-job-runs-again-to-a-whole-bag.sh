#!/usr/bin/env bash
# t6003: kill -9 while an export copies a large original into its bag leaves
# a half-built HOME/exports/<id>.part and no finished bag; after a restart the
# partial bag is swept, the export job runs again from the start and ends
# done with a whole bag (every checksum right, no .part anywhere) and exactly
# one "exported" event per item. SIGTERM during an export is a clean stop:
# the server exits 0 promptly (the export either ends before the job queue
# stops or gives up without being charged an attempt) and the export is done
# after the next start. (The background scrubber is off: it would re-hash the
# large object at its slow rate.)
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/lib_export.sh"

t_start_server --scrub-rate 0
C=INC-6003
x_case "$C" "Crash case"
head -c 700M /dev/zero | openssl enc -aes-128-ctr -nosalt -pass pass:custos -pbkdf2 2>/dev/null >"$T/big.bin"
printf 'small\n' >"$T/small.txt"
E1=$(t_push "$T/big.bin" cam-1)
E2=$(t_put "$ADMIN" "$T/small.txt" cam-1)
rm -f "$T/big.bin"
x_link "$C" "$E1" "$E2"
x_ready "$E1" "$E2"

# Waits until the export is copying the big original, half way or so.
mid_copy() {
  local i f sz
  for i in $(seq 1 1000); do
    f=$(find "$HOME_DIR/exports/$1.part/data" -type f -path "*$E1*" 2>/dev/null | head -n 1 || true)
    if [ -n "$f" ]; then
      sz=$(stat -c %s "$f" 2>/dev/null || echo 0)
      [ "$sz" -gt 1000000 ] && [ "$sz" -lt 600000000 ] && return 0
    fi
    sleep 0.01
  done
  fail "the export was never caught copying (last size ${sz:-none})"
}

x_export "$C" '{}'
X=$XID
mid_copy "$X"
t_kill_server
[ -d "$HOME_DIR/exports/$X.part" ] || fail "no partial bag after kill -9"
[ ! -e "$HOME_DIR/exports/$X" ] || fail "a finished bag after kill -9"

t_start_server --scrub-rate 0
x_done "$X" 120
[ -z "$(find "$HOME_DIR/exports" -maxdepth 1 -name '*.part')" ] || fail "a .part is left: $(ls "$HOME_DIR/exports")"
grep -q "removing .*$X.part" "$SERVER_LOG" || fail "the partial bag was not swept at start"
(cd "$HOME_DIR/exports/$X" && sha256sum --quiet -c manifest-sha256.txt && sha256sum --quiet -c tagmanifest-sha256.txt) ||
  fail "the bag made after the restart does not check"
assert_eq "734003206.2" "$(jq -r .payload_oxum <<<"$BODY")" "payload (700 MiB and 6 bytes)"
for e in "$E1" "$E2"; do
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$e/events"
  assert_eq 1 "$(jq --arg x "$X" '[.events[].event | select(.type == "exported" and .export == $x)] | length' <<<"$BODY")" \
    "one exported event for $e"
done
curl -sS -o "$T/x.tar" -H "$(auth "$ADMIN")" "$URL/v1/exports/$X"
mkdir "$T/x"
tar -xf "$T/x.tar" -C "$T/x"
rm -f "$T/x.tar"
(cd "$T/x/custos-$C-$X" && sha512sum --quiet -c manifest-sha512.txt) || fail "the downloaded bag does not check"
rm -rf "$T/x"

# SIGTERM mid-copy: a clean stop, and the export finishes after the start.
x_export "$C" "{\"evidence\":[\"$E1\"]}"
Y=$XID
mid_copy "$Y"
t0=$(date +%s)
t_stop_server
[ $(($(date +%s) - t0)) -lt 20 ] || fail "the stop waited for the export"
t_start_server --scrub-rate 0
x_done "$Y" 120
[ -z "$(find "$HOME_DIR/exports" -maxdepth 1 -name '*.part')" ] || fail "a .part is left after SIGTERM"
grep -q "(export) attempt" "$SERVER_LOG" && fail "the stop was counted as a failed attempt"
t_stop_server
