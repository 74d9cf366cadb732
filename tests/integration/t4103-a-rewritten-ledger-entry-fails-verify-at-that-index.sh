#!/usr/bin/env bash
# t4103: the ledger tampered with on disk (custos-tamper, RocksDB directly),
# each time on a fresh copy of one stopped archive:
#  - entry 3 rewritten (its "at" changed, still canonical JSON), the tree
#    left alone: verify exits 3 naming ledger index 3 (and no evidence); the
#    server, which only checks the stored tree against its last signed
#    head, starts and serves;
#  - entry 3 rewritten and the tree recomputed above it, so entries and tree
#    agree again: only the signed heads can tell, and verify fails exactly
#    the heads covering index 3 (check "sth"), nothing about entries; the
#    server refuses to start because the ledger no longer yields its head;
#  - entry 5 deleted: verify says ledger index 5 is missing.
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_TAMPER:?CUSTOS_TAMPER must point at the custos-tamper binary}"

t_start_server --scrub-rate 0
REC=$(t_token recorder --device cam-4103)
ids=()
for i in 1 2 3 4; do
  t_noise $((20000 + i)) "$T/f$i.bin"
  ids+=("$(t_put "$REC" "$T/f$i.bin" cam-4103)")
done
for id in "${ids[@]}"; do t_wait_200 "$URL/v1/evidence/$id/timestamp" "$T/tok.tsr"; done
t_sth_at_least "$(metric custos_ledger_entries)" >/dev/null
t_stop_server

PRISTINE="$T/pristine"
cp -a "$HOME_DIR" "$PRISTINE"
entries=$("$CUSTOS_TAMPER" --home "$PRISTINE" --entries)
[ "$entries" -ge 8 ] || fail "only $entries ledger entries; the test needs 8"
heads=$("$CUSTOS_TAMPER" --home "$PRISTINE" --heads)
covering=$(awk '$1 > 3' <<<"$heads" | sort -n | tr '\n' ' ')
[ -n "$covering" ] || fail "no signed head covers index 3 (heads: $heads)"


# The untouched copy passes: what fails below is the tampering.
t_fresh untouched
t_verify
assert_eq 0 "$VRC" "verify of the untouched archive ($(cat "$T/v.txt"))"

# 1. One entry rewritten, the tree left as it was.
t_fresh rewritten
"$CUSTOS_TAMPER" --home "$HOME_DIR" --rewrite-entry 3 2>"$T/tamper.log" || fail "custos-tamper: $(cat "$T/tamper.log")"
t_verify
assert_eq 3 "$VRC" "verify exit status after entry 3 was rewritten ($(cat "$T/v.txt"))"
grep '^FAILED' "$T/v.txt" | grep -q 'ledger index 3\b' || fail "verify does not name ledger index 3: $(cat "$T/v.txt")"
assert_eq 1 "$(jq '[.failures[] | select(.check == "ledger" and .index == 3)] | length' "$T/v.json")" \
  "failures with check ledger and index 3 ($(jq -c .failures "$T/v.json"))"
assert_eq 0 "$(jq '[.failures[] | select(.evidence)] | length' "$T/v.json")" \
  "failures naming evidence after an entry's time was changed"
grep '^FAILED' "$T/v.txt" | grep -Eq 'ledger index [0-24-9]' && fail "verify names another ledger index: $(cat "$T/v.txt")"
t_start_server --scrub-rate 0
call "$URL/healthz"
assert_eq 200 "$ST" "the server with a rewritten entry serves"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/${ids[0]}"
assert_eq 200 "$ST" "the server with a rewritten entry answers for its evidence"
t_stop_server

# 2. The entry rewritten and the tree recomputed to match it.
t_fresh retree
"$CUSTOS_TAMPER" --home "$HOME_DIR" --rewrite-entry-and-tree 3 2>"$T/tamper.log" || fail "custos-tamper: $(cat "$T/tamper.log")"
t_verify
assert_eq 3 "$VRC" "verify exit status after entry 3 and its tree were rewritten ($(cat "$T/v.txt"))"
assert_eq 0 "$(jq '[.failures[] | select(.check != "sth")] | length' "$T/v.json")" \
  "failures other than signed heads when the tree was recomputed ($(jq -c .failures "$T/v.json"))"
failed=$(jq -r '.failures[].size' "$T/v.json" | sort -n -u | tr '\n' ' ')
assert_eq "$covering" "$failed" "the sizes of the signed heads verify fails (heads: $(tr '\n' ' ' <<<"$heads"))"
# The server checks its last head against the stored tree at start-up.
rm -f "$T/port"
: >"$SERVER_LOG"
rc=0
timeout 20 "$CUSTOS" serve --home "$HOME_DIR" --listen 127.0.0.1:0 --port-file "$T/port" \
  --scrub-rate 0 >>"$SERVER_LOG" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "the server started on a ledger that no longer yields its signed head (rc $rc)"
[ ! -s "$T/port" ] || fail "the server listened on a ledger that no longer yields its signed head"
grep -q 'no longer yields its signed tree head' "$SERVER_LOG" || fail "the server's log does not say why it refused: $(cat "$SERVER_LOG")"

# 3. One entry deleted.
t_fresh deleted
"$CUSTOS_TAMPER" --home "$HOME_DIR" --delete-entry 5 2>"$T/tamper.log" || fail "custos-tamper: $(cat "$T/tamper.log")"
t_verify
assert_eq 3 "$VRC" "verify exit status after entry 5 was deleted ($(cat "$T/v.txt"))"
grep -q '^FAILED ledger index 5 is missing' "$T/v.txt" || fail "verify does not say ledger index 5 is missing: $(cat "$T/v.txt")"
assert_eq 1 "$(jq '[.failures[] | select(.check == "ledger" and .index == 5)] | length' "$T/v.json")" \
  "failures with check ledger and index 5 ($(jq -c .failures "$T/v.json"))"
