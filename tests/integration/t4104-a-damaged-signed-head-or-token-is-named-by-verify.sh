#!/usr/bin/env bash
# t4104: custos verify checks the signatures, not just the hashes, each time
# on a fresh copy of one stopped archive:
#  - one character of the last signed head's signature flipped: exactly that
#    head fails (check "sth", its size, a signature failure);
#  - one byte of one evidence's RFC 3161 token flipped: exactly that evidence
#    fails (check "timestamp");
#  - --ledger-key with the vkey the server published (GET /v1/ledger/key)
#    passes; with another server's vkey for the same log name every head
#    fails its signature, and nothing else does.
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_TAMPER:?CUSTOS_TAMPER must point at the custos-tamper binary}"

ORIGIN=custos.test/t4104
t_start_server --scrub-rate 0 --ledger-origin "$ORIGIN"
REC=$(t_token recorder --device cam-4104)
ids=()
shas=()
for i in 1 2 3; do
  t_noise $((30000 + i)) "$T/f$i.bin"
  ids+=("$(t_put "$REC" "$T/f$i.bin" cam-4104)")
  shas+=("$(sha256sum "$T/f$i.bin" | cut -d' ' -f1)")
done
for id in "${ids[@]}"; do t_wait_200 "$URL/v1/evidence/$id/timestamp" "$T/tok.tsr"; done
t_sth_at_least "$(metric custos_ledger_entries)" >/dev/null
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/key"
assert_eq 200 "$ST" "GET /v1/ledger/key"
jq -r .vkey <<<"$BODY" >"$T/own.vkey"
assert_match "^$ORIGIN\+" "$(cat "$T/own.vkey")" "the published vkey names the log"
t_stop_server

# Another server's key for a log of the same name.
HOME_DIR="$T/other"
t_start_server --scrub-rate 0 --ledger-origin "$ORIGIN"
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/key"
assert_eq 200 "$ST" "GET /v1/ledger/key of the other server"
jq -r .vkey <<<"$BODY" >"$T/other.vkey"
t_stop_server
cmp -s "$T/own.vkey" "$T/other.vkey" && fail "two servers published the same key"

PRISTINE="$T/var"
heads=$("$CUSTOS_TAMPER" --home "$PRISTINE" --heads | sort -n)
[ "$(wc -l <<<"$heads")" -ge 2 ] || fail "the test needs at least two signed heads (have: $heads)"
all_heads=$(tr '\n' ' ' <<<"$heads")

failures() { jq -c .failures "$T/v.json"; }

# The untouched archive passes, with its own key and with the published one.
t_fresh untouched
t_verify
assert_eq 0 "$VRC" "verify of the untouched archive ($(cat "$T/v.txt"))"
t_verify --ledger-key "$T/own.vkey"
assert_eq 0 "$VRC" "verify --ledger-key with the published vkey ($(cat "$T/v.txt"))"

# 1. The last head's signature (the one that covers every event).
size=$(tail -n 1 <<<"$heads")
t_fresh sth
"$CUSTOS_TAMPER" --home "$HOME_DIR" --corrupt-sth "$size" 2>"$T/tamper.log" || fail "custos-tamper: $(cat "$T/tamper.log")"
t_verify
assert_eq 3 "$VRC" "verify exit status with a damaged head signature ($(cat "$T/v.txt"))"
assert_eq 1 "$(jq .failure_count "$T/v.json")" "failure count ($(failures))"
assert_eq "sth $size" "$(jq -r '.failures[0] | "\(.check) \(.size)"' "$T/v.json")" "the failure ($(failures))"
assert_match 'signature' "$(jq -r '.failures[0].message' "$T/v.json")" "the failure's message"
grep '^FAILED' "$T/v.txt" | grep -q "size $size:" || fail "verify does not name size $size: $(cat "$T/v.txt")"

# 2. One evidence's time-stamp token.
t_fresh token
"$CUSTOS_TAMPER" --home "$HOME_DIR" --corrupt-token "${shas[1]}" 2>"$T/tamper.log" || fail "custos-tamper: $(cat "$T/tamper.log")"
t_verify
assert_eq 3 "$VRC" "verify exit status with a damaged token ($(cat "$T/v.txt"))"
assert_eq 1 "$(jq .failure_count "$T/v.json")" "failure count ($(failures))"
assert_eq "timestamp ${ids[1]}" "$(jq -r '.failures[0] | "\(.check) \(.evidence)"' "$T/v.json")" "the failure ($(failures))"
grep '^FAILED' "$T/v.txt" | grep -q "${ids[1]}" || fail "verify does not name ${ids[1]}: $(cat "$T/v.txt")"

# 3. The wrong key: every head fails its signature, and nothing else.
t_fresh wrongkey
t_verify --ledger-key "$T/other.vkey"
assert_eq 3 "$VRC" "verify exit status with another server's key ($(cat "$T/v.txt"))"
assert_eq 0 "$(jq '[.failures[] | select(.check != "sth")] | length' "$T/v.json")" \
  "failures other than signed heads with the wrong key ($(failures))"
failed=$(jq -r '.failures[].size' "$T/v.json" | sort -n -u | tr '\n' ' ')
assert_eq "$all_heads" "$failed" "the heads that fail with the wrong key"
assert_eq 0 "$(jq '[.failures[] | select(.message | test("signature") | not)] | length' "$T/v.json")" \
  "failures with the wrong key that are not about the signature ($(failures))"
