#!/usr/bin/env bash
# t6103: an export bag on the server is a copy of its items' bytes, so the
# purge of a deleted item removes the bags that hold it: the export's
# record says withdrawn and why, its download answers 410, the purged event
# names it; a bag without the item stays.
. "$(dirname "$0")/lib.sh"
t_start_server
LOU=$(t_token legal --user lou)
LIZ=$(t_token legal --user liz)
export CUSTOS_SERVER="$URL"
printf 'to be deleted' >"$T/a.bin"
printf 'to be kept' >"$T/b.bin"
EA=$(t_put "$ADMIN" "$T/a.bin" cam-1)
EB=$(t_put "$ADMIN" "$T/b.bin" cam-1)
C=$(CUSTOS_TOKEN="$LOU" "$CUSTOS" case create "Withdrawal case")
CUSTOS_TOKEN="$LOU" "$CUSTOS" case link "$C" "$EA" "$EB" >/dev/null
export_of() { # export_of JSON-SELECTION: waits for it; prints the export id
  local id i st
  id=$(curl -sS -X POST -H "$(auth "$LOU")" -H 'Content-Type: application/json' -d "$1" "$URL/v1/cases/$C/exports" | jq -r .id)
  for i in $(seq 1 150); do
    st=$(curl -sS -H "$(auth "$LOU")" "$URL/v1/exports/$id/status" | jq -r .state)
    [ "$st" = done ] && break
    sleep 0.2
  done
  [ "$st" = done ] || fail "export $id did not finish ($st)"
  echo "$id"
}
X_BOTH=$(export_of '{}')
X_B=$(export_of "{\"evidence\":[\"$EB\"]}")
grep -rq 'to be deleted' "$HOME_DIR/exports" || fail "the bag does not hold the item's bytes"

R=$(CUSTOS_TOKEN="$LOU" "$CUSTOS" request delete "$EA" --reason "wrong recording" 2>/dev/null)
CUSTOS_TOKEN="$LIZ" "$CUSTOS" approve "$R" >/dev/null
for i in $(seq 1 100); do
  st=$(curl -sS -H "$(auth "$LOU")" "$URL/v1/exports/$X_BOTH/status" | jq -r .state)
  [ "$st" = withdrawn ] && break
  sleep 0.1
done
assert_eq withdrawn "$st" "the bag holding the deleted item is withdrawn"
assert_match "$EA" "$(curl -sS -H "$(auth "$LOU")" "$URL/v1/exports/$X_BOTH/status" | jq -r .withdrawn_because)" "and says why"
call -o /dev/null -H "$(auth "$LOU")" "$URL/v1/exports/$X_BOTH"
assert_eq 410 "$ST" "its download is gone"
! grep -rq 'to be deleted' "$HOME_DIR/exports" || fail "a copy of the deleted bytes is still under exports/"
call -o "$T/b.tar" -H "$(auth "$LOU")" "$URL/v1/exports/$X_B"
assert_eq 200 "$ST" "the other bag stays"
"$CUSTOS" verify "$T/b.tar" >/dev/null || fail "the other bag no longer verifies"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$EA/events"
assert_eq "[\"$X_BOTH\"]" "$(jq -c '[.events[].event | select(.type == "purged")][0].exports_withdrawn' <<<"$BODY")" "the purge names the bag"
echo ok
