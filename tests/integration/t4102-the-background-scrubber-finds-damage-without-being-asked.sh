#!/usr/bin/env bash
# t4102: with the background scrubber on (--scrub-rate 50 MB/s, --scrub-idle
# 1 s) and no pass ever requested, a corrupted object is found on its own
# within seconds: counted in /metrics, logged as an ALARM, recorded as one
# scrub_failed event with the hash the bytes now have, and not recorded again
# by the passes after it. An object deleted from the store is found the same
# way and reported as missing. The untouched item is never named.
. "$(dirname "$0")/lib.sh"

t_start_server --scrub-rate 50000000 --scrub-idle 1
REC=$(t_token recorder --device cam-4102)

ids=()
shas=()
for i in 1 2 3; do
  t_noise $((300000 + i)) "$T/f$i.bin"
  ids+=("$(t_put "$REC" "$T/f$i.bin" cam-4102)")
  shas+=("$(sha256sum "$T/f$i.bin" | cut -d' ' -f1)")
done
objpath() { echo "$HOME_DIR/objects/sha256/${1:0:2}/${1:2:2}/$1"; }

scrub_failed() { # ID: the item's scrub_failed events, one JSON object a line
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1/events"
  assert_eq 200 "$ST" "events of $1"
  jq -c '.events[].event | select(.type == "scrub_failed")' <<<"$BODY"
}
# wait_finding ID: waits (20 s) for the item's first scrub_failed event; prints it.
wait_finding() {
  local e i
  for i in $(seq 1 100); do
    e=$(scrub_failed "$1")
    [ -n "$e" ] && { echo "$e"; return; }
    sleep 0.2
  done
  fail "the background scrubber did not report $1 within 20 s (GET /v1/scrub: $(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/scrub"))"
}
passes() { curl -sS -H "$(auth "$ADMIN")" "$URL/v1/scrub" | jq -r .background.completed_passes; }

# It is running and finds nothing wrong with intact objects.
for i in $(seq 1 100); do [ "$(passes)" -ge 1 ] && break; sleep 0.2; done
[ "$(passes)" -ge 1 ] || fail "no background pass completed within 20 s"
assert_eq 0 "$(metric custos_scrub_failures_total)" "scrub failures before the damage"

# 1. A corrupted object.
bad=${ids[0]}
obj=$(objpath "${shas[0]}")
chmod u+w "$obj"
python3 -c 'import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(123456); b = f.read(1); f.seek(123456); f.write(bytes([b[0] ^ 0x01]))' "$obj"
chmod 0444 "$obj"
now_sha=$(sha256sum "$obj" | cut -d' ' -f1)

ev=$(wait_finding "$bad")
assert_eq "$now_sha" "$(jq -r .actual_sha256 <<<"$ev")" "scrub_failed actual_sha256"
assert_eq "${shas[0]}" "$(jq -r .sha256 <<<"$ev")" "scrub_failed sha256"
assert_eq scrubber "$(jq -r .actor <<<"$ev")" "scrub_failed actor"
[ "$(metric custos_scrub_failures_total)" -ge 1 ] || fail "custos_scrub_failures_total did not count the finding"
grep 'ALARM' "$SERVER_LOG" | grep -q "$bad" || fail "no ALARM line names $bad"

# Later passes find it again but do not ledger it again.
p=$(passes)
for i in $(seq 1 100); do [ "$(passes)" -ge $((p + 2)) ] && break; sleep 0.2; done
[ "$(passes)" -ge $((p + 2)) ] || fail "the background scrubber stopped passing (at $(passes), was $p)"
assert_eq 1 "$(scrub_failed "$bad" | grep -c .)" "scrub_failed events for $bad after more passes"

# 2. A deleted object.
gone=${ids[2]}
obj=$(objpath "${shas[2]}")
dir=$(dirname "$obj")
mode=$(stat -c %a "$dir")
chmod u+w "$dir"
rm -f "$obj"
chmod "$mode" "$dir"
ev=$(wait_finding "$gone")
assert_match 'missing' "$(jq -r .reason <<<"$ev")" "scrub_failed reason for a deleted object"
assert_eq null "$(jq -r .actual_sha256 <<<"$ev")" "scrub_failed actual_sha256 of a deleted object"
assert_eq "${shas[2]}" "$(jq -r .sha256 <<<"$ev")" "scrub_failed sha256 of a deleted object"
grep 'ALARM' "$SERVER_LOG" | grep "$gone" | grep -q 'missing' || fail "no ALARM line says $gone is missing"
[ "$(metric custos_scrub_failures_total)" -ge 2 ] || fail "custos_scrub_failures_total did not count the missing object"

# The intact item was never named, and nobody asked for a pass.
assert_eq "" "$(scrub_failed "${ids[1]}")" "scrub_failed events for the intact item"
grep 'ALARM' "$SERVER_LOG" | grep -q "${ids[1]}" && fail "an ALARM line names the intact ${ids[1]}"
call -H "$(auth "$ADMIN")" "$URL/v1/scrub"
assert_eq null "$(jq -r .pass <<<"$BODY")" "no requested pass (all of this was the background scrubber)"

t_stop_server
