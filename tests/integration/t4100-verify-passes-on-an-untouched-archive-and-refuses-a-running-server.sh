#!/usr/bin/env bash
# t4100: custos verify on an archive nobody touched: while the server runs
# it refuses (exit 1, "stop it first") and leaves the server serving; once
# the server is stopped it passes (exit 0, "All checks passed"), and its
# JSON report counts what was uploaded: one object per evidence with their
# bytes, a token per evidence, and at least as many ledger entries as the
# last signed head the server published. A home that does not exist is
# exit 1, not a pass.
. "$(dirname "$0")/lib.sh"

t_start_server
REC=$(t_token recorder --device cam-4100)

n=3
bytes=0
ids=()
for i in $(seq 1 $n); do
  # Text, not random bytes, which now and then pass for media and get
  # renditions (objects too): this test counts objects.
  { yes "custos verify test object $i $RANDOM" || true; } | head -c $((40000 + i * 1000)) >"$T/f$i.bin"
  bytes=$((bytes + $(stat -c %s "$T/f$i.bin")))
  ids+=("$(t_put "$REC" "$T/f$i.bin" cam-4100)")
done
for id in "${ids[@]}"; do t_wait_200 "$URL/v1/evidence/$id/timestamp" "$T/tok.tsr"; done
entries=$(metric custos_ledger_entries)
sth=$(t_sth_at_least "$entries")
sth_size=$(jq -r .size <<<"$sth")

# A running server holds the index: verify must say so, not half-check.
rc=0
"$CUSTOS" verify --home "$HOME_DIR" >"$T/out" 2>"$T/err" || rc=$?
assert_eq 1 "$rc" "verify while the server runs"
assert_match 'stop it first' "$(cat "$T/err")" "verify's message while the server runs"
grep -q 'All checks passed' "$T/out" && fail "verify passed while the server runs"
call "$URL/healthz"
assert_eq 200 "$ST" "the server still serves after the refused verify"

t_stop_server

rc=0
"$CUSTOS" verify --home "$HOME_DIR" >"$T/out" 2>"$T/err" || rc=$?
assert_eq 0 "$rc" "verify exit status on an untouched archive ($(cat "$T/out" "$T/err"))"
grep -q '^All checks passed' "$T/out" || fail "verify did not say All checks passed: $(cat "$T/out")"
grep -q '^FAILED' "$T/out" && fail "verify listed failures: $(cat "$T/out")"

rc=0
"$CUSTOS" verify --home "$HOME_DIR" --json >"$T/r.json" 2>"$T/err" || rc=$?
assert_eq 0 "$rc" "verify --json exit status"
r=$(cat "$T/r.json")
assert_eq true "$(jq -r .ok <<<"$r")" "report ok"
assert_eq 0 "$(jq -r .failure_count <<<"$r")" "report failure_count"
assert_eq 0 "$(jq -r '.failures | length' <<<"$r")" "report failures"
assert_eq "$n" "$(jq -r .checked.evidence <<<"$r")" "evidence checked"
assert_eq "$n" "$(jq -r .checked.objects <<<"$r")" "objects re-hashed"
assert_eq "$bytes" "$(jq -r .checked.bytes <<<"$r")" "bytes re-hashed"
got=$(jq -r .checked.ledger_entries <<<"$r")
[ "$got" -ge "$sth_size" ] || fail "ledger_entries $got is less than the last signed head seen ($sth_size)"
[ "$got" -ge "$entries" ] || fail "ledger_entries $got is less than the server's custos_ledger_entries ($entries)"
[ "$(jq -r .checked.signed_heads <<<"$r")" -ge 1 ] || fail "no signed heads checked: $r"
[ "$(jq -r .checked.tokens <<<"$r")" -ge "$n" ] || fail "fewer tokens than evidence checked: $r"
assert_eq "$HOME_DIR" "$(jq -r .home <<<"$r")" "report home"

# Not a home at all: the checks cannot run, which is not a pass.
rc=0
"$CUSTOS" verify --home "$T/no-such-home" >/dev/null 2>"$T/err" || rc=$?
assert_eq 1 "$rc" "verify of a missing home"
