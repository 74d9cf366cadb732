#!/usr/bin/env bash
# t4002: the built-in TSA's RFC 3161 token for an original passes `openssl ts
# -verify` against /v1/tsa/root.pem for the original's SHA-256 (and for the
# file itself), and fails for any other digest or another root; its TSTInfo
# (openssl ts -reply -text) carries a policy and a serial that the
# "timestamped" event repeats, and two uploads get different serials. The
# chain of custody (/events) is "ingested" then "timestamped", with rising
# ledger indexes and leaf hashes SHA-256(0x00 || data). Each signed tree
# head gets a token too, over the SHA-256 of its whole checkpoint text.
. "$(dirname "$0")/lib.sh"

t_start_server
LEGAL=$(t_token legal --user lee)
[ -n "$LEGAL" ] || fail "could not create a legal token"

call -H "$(auth "$ADMIN")" "$URL/v1/tsa/root.pem"
assert_eq 200 "$ST" "GET /v1/tsa/root.pem"
curl -sS -H "$(auth "$ADMIN")" "$URL/v1/tsa/root.pem" >"$T/root.pem"
openssl x509 -in "$T/root.pem" -noout 2>/dev/null || fail "/v1/tsa/root.pem is not a PEM certificate"
cmp -s "$T/root.pem" "$HOME_DIR/keys/tsa-root.pem" || fail "/v1/tsa/root.pem is not keys/tsa-root.pem"

t_noise 70000 "$T/a.bin"
t_noise 80000 "$T/b.bin"
SHA_A=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
SHA_B=$(sha256sum "$T/b.bin" | cut -d' ' -f1)
A=$(t_put "$ADMIN" "$T/a.bin" cam-42)
B=$(t_put "$ADMIN" "$T/b.bin" cam-42)

# ---- the token ----------------------------------------------------------------
t_wait_200 "$URL/v1/evidence/$A/timestamp" "$T/a.tsr"
st=$(curl -sS -o "$T/a2.tsr" -D "$T/h" -w '%{http_code}' -H "$(auth "$LEGAL")" "$URL/v1/evidence/$A/timestamp")
assert_eq 200 "$st" "a legal token reads the time-stamp"
assert_eq application/timestamp-reply "$(hdr Content-Type)" "time-stamp Content-Type"
cmp -s "$T/a.tsr" "$T/a2.tsr" || fail "the stored token changed between two reads"
out=$(openssl ts -verify -digest "$SHA_A" -in "$T/a.tsr" -CAfile "$T/root.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify -digest of the original"
out=$(openssl ts -verify -data "$T/a.bin" -in "$T/a.tsr" -CAfile "$T/root.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify -data of the original"
# Any other digest, or another root, fails.
out=$(openssl ts -verify -digest "$SHA_B" -in "$T/a.tsr" -CAfile "$T/root.pem" 2>&1) &&
  fail "the token of a verifies for b's digest: $out"
[[ "$out" != *"Verification: OK"* ]] || fail "the token of a verifies for b's digest: $out"
flip=$(printf '%s' "${SHA_A:0:63}"; [ "${SHA_A:63}" = 0 ] && echo 1 || echo 0)
openssl ts -verify -digest "$flip" -in "$T/a.tsr" -CAfile "$T/root.pem" >/dev/null 2>&1 &&
  fail "the token of a verifies for a digest one hex digit off"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/x.key" -out "$T/x.pem" \
  -days 1 -subj "/CN=not the root" 2>/dev/null
openssl ts -verify -digest "$SHA_A" -in "$T/a.tsr" -CAfile "$T/x.pem" >/dev/null 2>&1 &&
  fail "the token verifies against a root that did not issue it"

# The TSTInfo: granted, for SHA-256 of the original, a policy, a serial.
txt=$(openssl ts -reply -in "$T/a.tsr" -text 2>/dev/null)
assert_match 'Status: Granted' "$txt" "token status"
assert_match 'Hash Algorithm: sha256' "$txt" "token hash algorithm"
POLICY=$(sed -n 's/^Policy OID: *//p' <<<"$txt")
SERIAL_A=$(sed -n 's/^Serial number: *0x//p' <<<"$txt" | tr 'A-F' 'a-f' | sed 's/^0*//')
assert_match '^[0-9]+(\.[0-9]+)+$' "$POLICY" "the token's policy OID"
assert_match '^[0-9a-f]+$' "$SERIAL_A" "the token's serial"
imprint=$(sed -n '/^Message data:/,/^Serial/p' <<<"$txt" | sed -n 's/^ *[0-9a-f]\{4\} - //p' | cut -c1-48 | tr -d ' \n-')
assert_eq "$SHA_A" "$imprint" "the token's message imprint"

t_wait_200 "$URL/v1/evidence/$B/timestamp" "$T/b.tsr"
out=$(openssl ts -verify -digest "$SHA_B" -in "$T/b.tsr" -CAfile "$T/root.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify of b"
SERIAL_B=$(openssl ts -reply -in "$T/b.tsr" -text 2>/dev/null | sed -n 's/^Serial number: *0x//p' | tr 'A-F' 'a-f' | sed 's/^0*//')
assert_match '^[0-9a-f]+$' "$SERIAL_B" "b's serial"
[ "$SERIAL_A" != "$SERIAL_B" ] || fail "two tokens share the serial $SERIAL_A"

# ---- the chain of custody ---------------------------------------------------
custody() { # ID SHA SERIAL
  call -H "$(auth "$LEGAL")" "$URL/v1/evidence/$1/events"
  no_probed  # the probe job runs beside the stamp job: its event's place varies
  assert_eq 200 "$ST" "events of $1"
  assert_eq "$1" "$(jq -r .evidence <<<"$BODY")" "events: evidence"
  assert_eq "ingested timestamped" "$(jq -r '[.events[].event.type] | join(" ")' <<<"$BODY")" "events of $1"
  local i0 i1 k data want
  i0=$(jq '.events[0].index' <<<"$BODY")
  i1=$(jq '.events[1].index' <<<"$BODY")
  [ "$i0" -lt "$i1" ] || fail "events of $1: indexes $i0 then $i1"
  for k in 0 1; do
    data=$(jq -r ".events[$k].data" <<<"$BODY")
    want=$({ printf '\0'; base64 -d <<<"$data"; } | openssl dgst -sha256 -r | cut -c1-64)
    assert_eq "$want" "$(jq -r ".events[$k].leaf_hash" <<<"$BODY")" "events of $1: leaf_hash $k = SHA-256(0x00 || data)"
    assert_eq "$(base64 -d <<<"$data" | jq -cS .)" "$(jq -cS ".events[$k].event" <<<"$BODY")" "events of $1: event $k = data"
    assert_eq "$2" "$(jq -r ".events[$k].event.sha256" <<<"$BODY")" "events of $1: sha256 of event $k"
    assert_eq "$1" "$(jq -r ".events[$k].event.evidence" <<<"$BODY")" "events of $1: evidence of event $k"
  done
  assert_eq built-in "$(jq -r '.events[1].event.tsa' <<<"$BODY")" "events of $1: the TSA"
  assert_eq "$3" "$(jq -r '.events[1].event.serial' <<<"$BODY" | sed 's/^0*//')" "events of $1: the serial is the token's"
  assert_eq "$POLICY" "$(jq -r '.events[1].event.policy' <<<"$BODY")" "events of $1: the policy is the token's"
  # The ledger's entry at that index is the same event.
  call -H "$(auth "$LEGAL")" "$URL/v1/ledger/entries?start=$i1&end=$i1"
  assert_eq "$want" "$(jq -r '.entries[0].leaf_hash' <<<"$BODY")" "ledger entry $i1 is the timestamped event of $1"
}
custody "$A" "$SHA_A" "$SERIAL_A"
custody "$B" "$SHA_B" "$SERIAL_B"

# Unknown evidence: 404 JSON.
call -H "$(auth "$LEGAL")" "$URL/v1/evidence/01900000-0000-7000-8000-000000000000/timestamp"
assert_eq 404 "$ST" "time-stamp of unknown evidence"
assert_eq not_found "$(jq -r .error <<<"$BODY")" "error of the time-stamp of unknown evidence"

# ---- the signed tree head's token -------------------------------------------
# 2 tokens, then ingested + timestamped twice.
sth=$(t_sth_at_least 6)
SIZE=$(jq .size <<<"$sth")
jq -j .checkpoint <<<"$sth" >"$T/note"
CK=$(jq -r .checkpoint_sha256 <<<"$sth")
assert_eq "$CK" "$(sha256sum "$T/note" | cut -d' ' -f1)" "checkpoint_sha256 = SHA-256 of the checkpoint text"
t_wait_200 "$URL/v1/ledger/timestamp?size=$SIZE" "$T/sth.tsr"
out=$(openssl ts -verify -digest "$CK" -in "$T/sth.tsr" -CAfile "$T/root.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify of the head's token with the checkpoint's digest"
out=$(openssl ts -verify -data "$T/note" -in "$T/sth.tsr" -CAfile "$T/root.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "openssl ts -verify -data of the checkpoint text"
openssl ts -verify -digest "$(jq -r .root <<<"$sth")" -in "$T/sth.tsr" -CAfile "$T/root.pem" >/dev/null 2>&1 &&
  fail "the head's token verifies for the bare root (it must cover the whole checkpoint)"
REV=$(t_token reviewer --user rita)
assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' -H "$(auth "$REV")" "$URL/v1/ledger/timestamp?size=$SIZE")" \
  "a reviewer reads the head's token"
call -H "$(auth "$REV")" "$URL/v1/ledger/timestamp?size=$((SIZE + 100))"
assert_eq 404 "$ST" "token of a head that does not exist"
assert_eq not_found "$(jq -r .error <<<"$BODY")" "error of a token of a head that does not exist"

t_stop_server
