#!/usr/bin/env bash
# t6100: deleting evidence takes a request by one user and an approval by a
# different legal user; approving one's own request is 403; a refusal keeps
# everything; a legal hold on the item or on its case makes the request (and
# an approval) 409 naming the hold; lifting the hold is itself a request
# that needs a second person. An approved deletion leaves a tombstone (the
# record with state deleted, reason, requester and approver; content and
# clips answer 410 with it), removes the bytes no other item shares (an
# identical upload keeps them), and every step is a ledger event; custos
# verify still passes afterwards.
. "$(dirname "$0")/lib.sh"
t_start_server
LOU=$(t_token legal --user lou)
LIZ=$(t_token legal --user liz)
LOU2=$(t_token legal --user lou) # the same person with a second token
RITA=$(t_token reviewer --user rita)
export CUSTOS_SERVER="$URL"
lou() { CUSTOS_TOKEN="$LOU" "$CUSTOS" "$@"; }
liz() { CUSTOS_TOKEN="$LIZ" "$CUSTOS" "$@"; }
printf 'the footage to delete' >"$T/a.bin"
printf 'shared bytes' >"$T/s.bin"
EA=$(t_put "$ADMIN" "$T/a.bin" cam-1)
ES1=$(t_put "$ADMIN" "$T/s.bin" cam-1)
ES2=$(t_put "$ADMIN" "$T/s.bin" cam-2)
SHA_A=$(sha256sum "$T/a.bin" | cut -c1-64)
SHA_S=$(sha256sum "$T/s.bin" | cut -c1-64)
obj() { echo "$HOME_DIR/objects/sha256/${1:0:2}/${1:2:2}/$1"; }
C=$(lou case create "Deletion case")
lou case link "$C" "$EA" >/dev/null

# Who may ask: not a reviewer; a reason is required.
call -X POST -H "$(auth "$RITA")" -H 'Content-Type: application/json' -d "{\"action\":\"delete\",\"evidence\":\"$EA\",\"reason\":\"x\"}" "$URL/v1/requests"
assert_eq 403 "$ST" "a reviewer requests a deletion"
call -X POST -H "$(auth "$LOU")" -H 'Content-Type: application/json' -d "{\"action\":\"delete\",\"evidence\":\"$EA\"}" "$URL/v1/requests"
assert_eq 400 "$ST" "no reason"

# A hold on the case stops the request.
H=$(liz hold --case "$C" --reason "litigation pending")
[ -n "$H" ] || fail "no hold id"
rc=0
lou request delete "$EA" --reason "recorded by mistake" 2>"$T/err" || rc=$?
assert_eq 1 "$rc" "request under hold fails"
assert_match "legal hold $H" "$(cat "$T/err")" "the 409 names the hold"
call -H "$(auth "$LOU")" "$URL/v1/evidence/$EA"
assert_eq "$H" "$(jq -r '.holds[0].id' <<<"$BODY")" "the record shows the hold"

# Lifting the hold needs two people.
R1=$(lou release "$H" --reason "case settled" 2>/dev/null)
rc=0; lou approve "$R1" 2>"$T/err" || rc=$?
assert_eq 1 "$rc" "lou approves his own release"
assert_match 'different user' "$(cat "$T/err")" "self-approval says why"
call -X POST -H "$(auth "$LOU2")" "$URL/v1/requests/$R1/approve"
assert_eq 403 "$ST" "the same user with another token"
call -X POST -H "$(auth "$ADMIN")" "$URL/v1/requests/$R1/approve"
assert_eq 403 "$ST" "an admin is not a legal approver"
out=$(liz approve "$R1" --reason "agreed")
assert_match "done +release_hold" "$out" "liz approves the release"
call -H "$(auth "$LOU")" "$URL/v1/holds/$H"
assert_eq released "$(jq -r .state <<<"$BODY")" "the hold is released"

# A hold on the item itself, then released the same way.
H2=$(liz hold "$EA" --reason "internal review")
call -X DELETE -H "$(auth "$LOU")" -H 'Content-Type: application/json' -d '{"reason":"wrong upload"}' "$URL/v1/evidence/$EA"
assert_eq 409 "$ST" "DELETE under an item hold"
assert_match "$H2" "$(jq -r .detail <<<"$BODY")" "names the item hold"
R2=$(lou release "$H2" --reason "review done" 2>/dev/null)
liz approve "$R2" >/dev/null

# Request, refuse, request again, approve.
R3=$(lou request delete "$EA" --reason "recorded by mistake" 2>/dev/null)
call -X POST -H "$(auth "$LOU")" -H 'Content-Type: application/json' -d "{\"action\":\"delete\",\"evidence\":\"$EA\",\"reason\":\"again\"}" "$URL/v1/requests"
assert_eq 409 "$ST" "a second open request for the same item"
rc=0; liz refuse "$R3" 2>/dev/null || rc=$?
assert_eq 2 "$rc" "refusing needs a reason"
liz refuse "$R3" --reason "needed for training review" >/dev/null
[ -e "$(obj "$SHA_A")" ] || fail "a refusal removed bytes"
curl -sSf -o /dev/null -H "$(auth "$LOU")" "$URL/v1/evidence/$EA/content" || fail "content after a refusal"
R4=$(lou request delete "$EA" --reason "recorded by mistake, confirmed" 2>/dev/null)
# A hold set between request and approval stops the approval, and the request waits.
H3=$(liz hold "$EA" --reason "late subpoena")
call -X POST -H "$(auth "$LIZ")" "$URL/v1/requests/$R4/approve"
assert_eq 409 "$ST" "approval under a hold"
call -H "$(auth "$LOU")" "$URL/v1/requests/$R4"
assert_eq pending "$(jq -r .state <<<"$BODY")" "the request still waits"
R5=$(liz release "$H3" --reason "subpoena withdrawn" 2>/dev/null)
lou approve "$R5" >/dev/null
out=$(liz approve "$R4" --reason "confirmed with the officer")
assert_match "done +delete" "$out" "approved"

# The tombstone and the bytes.
call -H "$(auth "$LOU")" "$URL/v1/evidence/$EA"
assert_eq deleted "$(jq -r .state <<<"$BODY")" "state deleted"
assert_eq "$SHA_A" "$(jq -r .sha256 <<<"$BODY")" "the hash stays"
assert_eq "recorded by mistake, confirmed" "$(jq -r .deletion.reason <<<"$BODY")" "reason"
assert_eq lou "$(jq -r .deletion.requested_by.user <<<"$BODY")" "requester"
assert_eq liz "$(jq -r .deletion.approved_by.user <<<"$BODY")" "approver"
call -H "$(auth "$LOU")" "$URL/v1/evidence/$EA/content"
assert_eq 410 "$ST" "content of a deleted item"
assert_eq deleted "$(jq -r .record.state <<<"$BODY")" "the 410 carries the tombstone"
assert_match 'deleted at .* approved by liz' "$(jq -r .detail <<<"$BODY")" "and says so"
call -H "$(auth "$LOU")" "$URL/v1/evidence/$EA/clip?start=0&end=1"
assert_eq 410 "$ST" "a clip of a deleted item"
for i in $(seq 1 100); do [ ! -e "$(obj "$SHA_A")" ] && break; sleep 0.1; done
[ ! -e "$(obj "$SHA_A")" ] || fail "the purge did not remove the bytes"

# Shared bytes stay for the other item.
R6=$(lou request delete "$ES1" --reason "duplicate upload" 2>/dev/null)
liz approve "$R6" >/dev/null
for i in $(seq 1 100); do
  p=$(curl -sS -H "$(auth "$LOU")" "$URL/v1/evidence/$ES1" | jq -r '.deletion.purged_at // empty')
  [ -n "$p" ] && break
  sleep 0.1
done
[ -n "$p" ] || fail "the purge of the shared item did not run"
[ -e "$(obj "$SHA_S")" ] || fail "bytes another item holds were removed"
cmp -s "$T/s.bin" <(curl -sS -H "$(auth "$LOU")" "$URL/v1/evidence/$ES2/content") || fail "the other item's content"

# The ledger, in order.
t_sth_at_least 1 >/dev/null
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$EA/events"
assert_eq "hold_set deletion_requested deletion_refused deletion_requested hold_set deletion_approved deleted purged" \
  "$(jq -r '[.events[].event.type | select(IN("hold_set","deletion_requested","deletion_refused","deletion_approved","deleted","purged"))] | join(" ")' <<<"$BODY")" "EA's custody"
assert_eq "[\"$SHA_A\"]" "$(jq -c '[.events[].event | select(.type == "purged")][0].removed' <<<"$BODY")" "purged names what went"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ES1/events"
assert_eq "[\"$SHA_S\"]" "$(jq -c '[.events[].event | select(.type == "purged")][0].kept_shared' <<<"$BODY")" "kept because shared"
call -H "$(auth "$LOU")" "$URL/v1/requests?state=done"
assert_eq 5 "$(jq '.items | length' <<<"$BODY")" "five approved requests"

t_stop_server
t_verify
assert_eq 0 "$VRC" "custos verify after deletions: $(cat "$T/v.txt")"
echo ok
