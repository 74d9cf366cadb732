#!/usr/bin/env bash
# t4003: with --tsa-url and --tsa-ca the stamps come from an external RFC 3161
# TSA (here `openssl ts -reply` behind tsa_server.py, with a CA and a TSA
# certificate made by the openssl CLI): the stored token is the TSA's own
# reply, passes `openssl ts -verify` against that CA (and not against another
# one), names the TSA's policy; the "timestamped" event names the TSA's URL
# and the token's serial; /v1/tsa/root.pem serves that CA; signed tree heads
# are stamped by it too.
. "$(dirname "$0")/lib.sh"

t_tsa_pki "$T/tsa" "Test TSA"
t_tsa_start "$T/tsa" 0
t_start_server --tsa-url "$TSA_URL" --tsa-ca "$T/tsa/ca.pem"

curl -sS -H "$(auth "$ADMIN")" "$URL/v1/tsa/root.pem" >"$T/root.pem"
cmp -s "$T/root.pem" "$T/tsa/ca.pem" || fail "/v1/tsa/root.pem is not the --tsa-ca file"

t_noise 50000 "$T/a.bin"
SHA=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
ID=$(t_put "$ADMIN" "$T/a.bin" cam-43)
t_wait_200 "$URL/v1/evidence/$ID/timestamp" "$T/a.tsr" 20

out=$(openssl ts -verify -digest "$SHA" -in "$T/a.tsr" -CAfile "$T/tsa/ca.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify against the external TSA's CA"
out=$(openssl ts -verify -data "$T/a.bin" -in "$T/a.tsr" -CAfile "$T/tsa/ca.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify -data against the external TSA's CA"
openssl ts -verify -digest "$(printf x | sha256sum | cut -c1-64)" -in "$T/a.tsr" -CAfile "$T/tsa/ca.pem" >/dev/null 2>&1 &&
  fail "the token verifies for another digest"
t_tsa_pki "$T/other" "Other TSA"
openssl ts -verify -digest "$SHA" -in "$T/a.tsr" -CAfile "$T/other/ca.pem" >/dev/null 2>&1 &&
  fail "the token verifies against a CA that did not issue the TSA's certificate"

txt=$(openssl ts -reply -in "$T/a.tsr" -text 2>/dev/null)
assert_match 'Status: Granted' "$txt" "token status"
assert_eq 1.3.6.1.4.1.99999.1.1 "$(sed -n 's/^Policy OID: *//p' <<<"$txt")" "the token's policy is tsa.cnf's default_policy"
assert_match 'TSA: DirName:.*CN *= *Test TSA' "$(grep '^TSA:' <<<"$txt")" "the token names the test TSA"
assert_match 'Ordering: yes' "$txt" "tsa.cnf's ordering = yes"
SERIAL=$(sed -n 's/^Serial number: *0x//p' <<<"$txt" | tr 'A-F' 'a-f' | sed 's/^0*//')
assert_match '^[0-9a-f]+$' "$SERIAL" "the token's serial"
# The TSA was really asked (and its serial file counted the request).
grep -q '"POST /tsa HTTP/1.1" 200' "$T/tsa/tsa.log" || fail "tsa_server.py logged no successful POST: $(cat "$T/tsa/tsa.log")"
[ -s "$T/tsa/tsaserial" ] || fail "openssl ts -reply wrote no serial file"

call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events"
no_probed  # the probe job runs beside the stamp job: its event's place varies
assert_eq 200 "$ST" "events"
assert_eq "ingested timestamped" "$(jq -r '[.events[].event.type] | join(" ")' <<<"$BODY")" "event types"
assert_eq "$TSA_URL" "$(jq -r '.events[1].event.tsa' <<<"$BODY")" "the timestamped event names the external TSA's URL"
assert_eq "$SERIAL" "$(jq -r '.events[1].event.serial' <<<"$BODY" | sed 's/^0*//')" "the event's serial is the token's"
assert_eq 1.3.6.1.4.1.99999.1.1 "$(jq -r '.events[1].event.policy' <<<"$BODY")" "the event's policy"
assert_eq "$SHA" "$(jq -r '.events[1].event.sha256' <<<"$BODY")" "the event's sha256"

# A second upload: another serial from the same TSA.
t_noise 50001 "$T/b.bin"
ID2=$(t_put "$ADMIN" "$T/b.bin" cam-43)
t_wait_200 "$URL/v1/evidence/$ID2/timestamp" "$T/b.tsr" 20
out=$(openssl ts -verify -data "$T/b.bin" -in "$T/b.tsr" -CAfile "$T/tsa/ca.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify of the second token"
S2=$(openssl ts -reply -in "$T/b.tsr" -text 2>/dev/null | sed -n 's/^Serial number: *0x//p' | tr 'A-F' 'a-f' | sed 's/^0*//')
[ "$S2" != "$SERIAL" ] || fail "two tokens from the TSA share the serial $SERIAL"

# Signed tree heads are stamped by the external TSA as well.
sth=$(t_sth_at_least 5)
SIZE=$(jq .size <<<"$sth")
t_wait_200 "$URL/v1/ledger/timestamp?size=$SIZE" "$T/sth.tsr" 20
out=$(openssl ts -verify -digest "$(jq -r .checkpoint_sha256 <<<"$sth")" -in "$T/sth.tsr" -CAfile "$T/tsa/ca.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "the head's token verifies against the external CA"

t_stop_server
