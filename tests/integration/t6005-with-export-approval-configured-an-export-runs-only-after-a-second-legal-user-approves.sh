#!/usr/bin/env bash
# t6005: with --export-needs-approval an export request waits (state
# awaiting_approval, a pending export request, export_requested event); its
# download is 409 meanwhile; its maker cannot approve it; a refusal ends it
# (refused); an approval by a different legal user runs it, and custos
# export waits through the approval and saves the bag.
. "$(dirname "$0")/lib.sh"
t_start_server --export-needs-approval
LOU=$(t_token legal --user lou)
LIZ=$(t_token legal --user liz)
export CUSTOS_SERVER="$URL"
printf 'exhibit' >"$T/a.bin"
E=$(t_put "$ADMIN" "$T/a.bin" cam-1)
C=$(CUSTOS_TOKEN="$LOU" "$CUSTOS" case create "Export case")
CUSTOS_TOKEN="$LOU" "$CUSTOS" case link "$C" "$E" >/dev/null

call -X POST -H "$(auth "$LOU")" -H 'Content-Type: application/json' -d '{}' "$URL/v1/cases/$C/exports"
assert_eq 202 "$ST" "export requested: $BODY"
X1=$(jq -r .id <<<"$BODY")
assert_eq awaiting_approval "$(jq -r .state <<<"$BODY")" "it waits"
R1=$(jq -r .request <<<"$BODY")
call -H "$(auth "$LOU")" "$URL/v1/requests/$R1"
assert_eq export "$(jq -r .action <<<"$BODY")" "an export request"
assert_eq pending "$(jq -r .state <<<"$BODY")" "pending"
call -o /dev/null -H "$(auth "$LOU")" "$URL/v1/exports/$X1"
assert_eq 409 "$ST" "no download before approval"
call -X POST -H "$(auth "$LOU")" "$URL/v1/requests/$R1/approve"
assert_eq 403 "$ST" "lou approves his own export"
CUSTOS_TOKEN="$LIZ" "$CUSTOS" refuse "$R1" --reason "not before the hearing" >/dev/null
call -H "$(auth "$LOU")" "$URL/v1/exports/$X1/status"
assert_eq refused "$(jq -r .state <<<"$BODY")" "refused"
sleep 1
[ ! -e "$HOME_DIR/exports/$X1" ] || fail "a refused export made a bag"

# custos export waits for the approval, then saves the bag.
CUSTOS_TOKEN="$LOU" "$CUSTOS" export "$C" --out "$T/bag.tar" >"$T/out" 2>"$T/err" &
pid=$!
for i in $(seq 1 100); do
  R2=$(curl -sS -H "$(auth "$LIZ")" "$URL/v1/requests?state=pending" | jq -r '[.items[] | select(.action == "export")][0].id // empty')
  [ -n "$R2" ] && break
  sleep 0.1
done
[ -n "$R2" ] || fail "custos export made no request"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "custos export did not wait for the approval: $(cat "$T/err")"
CUSTOS_TOKEN="$LIZ" "$CUSTOS" approve "$R2" --reason "for the hearing" >/dev/null
wait "$pid" || fail "custos export failed: $(cat "$T/err")"
assert_match 'second legal user' "$(cat "$T/err")" "custos export said what it waited for"
"$CUSTOS" verify "$T/bag.tar" >"$T/v" || fail "the approved bag does not verify: $(cat "$T/v")"

t_sth_at_least 1 >/dev/null
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=0&end=999"
assert_eq "export_requested export_refused export_requested export_approved" \
  "$(jq -r '[.entries[].event.type | select(startswith("export_"))] | join(" ")' <<<"$BODY")" "the decisions are in the ledger"
echo ok
