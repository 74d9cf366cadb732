#!/usr/bin/env bash
# t4101: one flipped byte in one of three stored objects. custos scrub (a
# requested pass; the background scrubber is off) exits 3 and names that
# evidence and no other; the alarm is counted in /metrics, logged as an
# ALARM line, marked on the record and appended to the item's events as one
# scrub_failed event carrying both hashes, and a second pass finds it again
# without appending a second event. Offline, custos verify exits 3 with
# exactly one failure: check "object" for that evidence.
. "$(dirname "$0")/lib.sh"

t_start_server --scrub-rate 0
REC=$(t_token recorder --device cam-4101)

ids=()
shas=()
for i in 1 2 3; do
  t_noise $((60000 + i)) "$T/f$i.bin"
  ids+=("$(t_put "$REC" "$T/f$i.bin" cam-4101)")
  shas+=("$(sha256sum "$T/f$i.bin" | cut -d' ' -f1)")
done
for id in "${ids[@]}"; do t_wait_200 "$URL/v1/evidence/$id/timestamp" "$T/tok.tsr"; done
# Random bytes sometimes pass for media (MPEG audio, say), and then have
# renditions, which are objects too: count what there is once they settle.
nobj=3
for id in "${ids[@]}"; do
  t_rend_settle "$id"
  n=$(jq --arg s "$(jq -r .sha256 <<<"$BODY")" \
    '[.renditions[] | select(.state == "done" and .sha256 != $s) | .sha256] | unique | length' <<<"$BODY")
  nobj=$((nobj + n))
done

# An untouched archive scrubs clean.
rc=0
"$CUSTOS" scrub --server "$URL" --token "$ADMIN" >"$T/scrub0" 2>&1 || rc=$?
assert_eq 0 "$rc" "scrub of an untouched archive ($(cat "$T/scrub0"))"
assert_eq 0 "$(metric custos_scrub_failures_total)" "scrub failures before the damage"

# Damage the middle object: one bit of one byte in the middle.
bad=${ids[1]}
sha=${shas[1]}
obj="$HOME_DIR/objects/sha256/${sha:0:2}/${sha:2:2}/$sha"
[ -f "$obj" ] || fail "no object at $obj"
chmod u+w "$obj"
python3 -c 'import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(30000); b = f.read(1); f.seek(30000); f.write(bytes([b[0] ^ 0x10]))' "$obj"
chmod 0444 "$obj"
now_sha=$(sha256sum "$obj" | cut -d' ' -f1)
[ "$now_sha" != "$sha" ] || fail "the object did not change"

rc=0
"$CUSTOS" scrub --server "$URL" --token "$ADMIN" >"$T/scrub1" 2>&1 || rc=$?
assert_eq 3 "$rc" "scrub exit status with a damaged object ($(cat "$T/scrub1"))"
named=$(sed -n 's/^FAILED evidence \([^:]*\):.*/\1/p' "$T/scrub1" | sort -u | tr '\n' ' ')
assert_eq "$bad " "$named" "the evidence scrub names"
assert_match "scrubbed $nobj objects" "$(cat "$T/scrub1")" "scrub's summary"
assert_eq 1 "$(metric custos_scrub_failures_total)" "custos_scrub_failures_total after one pass"

scrub_failed() { # ID: the item's scrub_failed events, one JSON object a line
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1/events"
  assert_eq 200 "$ST" "events of $1"
  jq -c '.events[].event | select(.type == "scrub_failed")' <<<"$BODY"
}
ev=$(scrub_failed "$bad")
assert_eq 1 "$(grep -c . <<<"$ev")" "scrub_failed events for the damaged evidence"
assert_eq "$sha" "$(jq -r .sha256 <<<"$ev")" "scrub_failed sha256 (the recorded hash)"
assert_eq "$now_sha" "$(jq -r .actual_sha256 <<<"$ev")" "scrub_failed actual_sha256 (what the bytes hash to now)"
for id in "${ids[0]}" "${ids[2]}"; do
  assert_eq "" "$(scrub_failed "$id")" "scrub_failed events for the undamaged evidence $id"
done

call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$bad"
assert_eq failed "$(jq -r .integrity.status <<<"$BODY")" "the damaged record's integrity status"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/${ids[0]}"
assert_eq null "$(jq -r .integrity <<<"$BODY")" "an undamaged record's integrity"

grep 'ALARM' "$SERVER_LOG" | grep -q "$bad" || fail "no ALARM line names $bad"
for id in "${ids[0]}" "${ids[2]}"; do
  grep 'ALARM' "$SERVER_LOG" | grep -q "$id" && fail "an ALARM line names the undamaged $id"
done

# The same finding again: reported again, ledgered once.
rc=0
"$CUSTOS" scrub --server "$URL" --token "$ADMIN" >"$T/scrub2" 2>&1 || rc=$?
assert_eq 3 "$rc" "second scrub exit status"
named=$(sed -n 's/^FAILED evidence \([^:]*\):.*/\1/p' "$T/scrub2" | sort -u | tr '\n' ' ')
assert_eq "$bad " "$named" "the evidence the second scrub names"
assert_eq 1 "$(scrub_failed "$bad" | grep -c .)" "scrub_failed events after a second pass"

t_stop_server

rc=0
"$CUSTOS" verify --home "$HOME_DIR" >"$T/v.txt" 2>&1 || rc=$?
assert_eq 3 "$rc" "verify exit status ($(cat "$T/v.txt"))"
grep '^FAILED' "$T/v.txt" | grep -q "$bad" || fail "verify's report does not name $bad: $(cat "$T/v.txt")"
rc=0
"$CUSTOS" verify --home "$HOME_DIR" --json >"$T/v.json" 2>&1 || rc=$?
assert_eq 3 "$rc" "verify --json exit status"
r=$(cat "$T/v.json")
assert_eq false "$(jq -r .ok <<<"$r")" "report ok"
assert_eq 1 "$(jq -r .failure_count <<<"$r")" "verify failure_count ($(jq -c .failures <<<"$r"))"
assert_eq "object $bad" "$(jq -r '.failures[0] | "\(.check) \(.evidence)"' <<<"$r")" "verify's failure"
assert_match "$now_sha" "$(jq -r '.failures[0].message' <<<"$r")" "verify's failure message names what it hashes to"
assert_eq "$nobj" "$(jq -r .checked.objects <<<"$r")" "objects re-hashed by verify"
