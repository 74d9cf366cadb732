#!/usr/bin/env bash
# t6101: retention categories (configured with --retention) give each item
# an earliest deletion date: N days after recording, N after its cases
# closed, or never; an item names its category in its upload metadata
# (an unknown one is 400) or gets it later from a reviewer or admin; a move
# that makes it deletable sooner becomes a request for a second legal user.
# The sweep proposes the deletion of what is due and never deletes: a
# proposal cannot be approved until a person makes it a request.
. "$(dirname "$0")/lib.sh"
t_start_server --retention short=0d --retention evidentiary=closed+1y --retention-sweep 1 --sweep-interval 1
LOU=$(t_token legal --user lou)
LIZ=$(t_token legal --user liz)
RITA=$(t_token reviewer --user rita)
export CUSTOS_SERVER="$URL"
put_ret() { # put_ret FILE CATEGORY RECORDED_AT: prints the evidence id (or the status)
  curl -sS -D "$T/h" -o "$T/b" -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$ADMIN")" -H "Upload-Length: $(stat -c %s "$1")" \
    -H "Upload-Metadata: device_id $(b64 cam-9),retention $(b64 "$2"),recorded_at $(b64 "$3")" --data-binary "@$1" "$URL/v1/uploads" >/dev/null
  hdr Custos-Evidence-Id
}
printf 'keep me' >"$T/k"
printf 'short lived' >"$T/s"
printf 'case item' >"$T/c"
printf 'default item' >"$T/d"
EK=$(put_ret "$T/k" permanent 2026-01-01T00:00:00Z)
ES=$(put_ret "$T/s" short 2026-01-01T00:00:00Z)
EC=$(put_ret "$T/c" evidentiary 2026-01-01T00:00:00Z)
ED=$(t_put "$ADMIN" "$T/d" cam-9)
put_ret "$T/d" forever 2026-01-01T00:00:00Z >/dev/null
assert_eq 400 "$(sed -n 's/^HTTP[^ ]* \([0-9]*\).*/\1/p' "$T/h" | head -1)" "an unknown category in the metadata"
assert_match 'retention' "$(jq -r .detail "$T/b")" "the 400 names the key"

ret() { curl -sS -H "$(auth "$LOU")" "$URL/v1/evidence/$1" | jq -c "$2"; }
assert_eq '"permanent"' "$(ret "$EK" .retention.category)" "permanent"
assert_eq null "$(ret "$EK" .retention.earliest_deletion_at)" "never deletable"
assert_eq '"2026-01-01T00:00:00Z"' "$(ret "$ES" .retention.earliest_deletion_at)" "0 days after recording"
assert_eq '"uncategorized"' "$(ret "$ED" .retention.category)" "the default category"
assert_match 'in no case' "$(ret "$EC" .retention.why)" "evidentiary, in no case yet"
C=$(CUSTOS_TOKEN="$LOU" "$CUSTOS" case create "Retention case")
CUSTOS_TOKEN="$LOU" "$CUSTOS" case link "$C" "$EC" >/dev/null
assert_match "case $C is closed" "$(ret "$EC" .retention.why)" "waits for the case"
CUSTOS_TOKEN="$LOU" "$CUSTOS" case close "$C" >/dev/null
closed=$(curl -sS -H "$(auth "$LOU")" "$URL/v1/cases/$C" | jq -r .closed_at)
want=$(python3 -c "import datetime,sys; t=datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')); print((t+datetime.timedelta(days=365.25)).strftime('%Y-%m-%dT%H:%M:%S'))" "$closed")
assert_match "^\"$want" "$(ret "$EC" .retention.earliest_deletion_at)" "one year after the case closed"

# Longer: applied at once (a reviewer on her case may set it too).
CUSTOS_TOKEN="$ADMIN" "$CUSTOS" case assign "$C" rita >/dev/null
out=$(CUSTOS_TOKEN="$RITA" "$CUSTOS" retention "$EC" permanent --reason "landmark case")
assert_match "permanent \(never\)" "$out" "rita sets permanent"
call -X PUT -H "$(auth "$RITA")" -H 'Content-Type: application/json' -d '{"category":"permanent"}' "$URL/v1/evidence/$ED/retention"
assert_eq 403 "$ST" "rita outside her cases"
# Shorter: a request.
call -X PUT -H "$(auth "$LOU")" -H 'Content-Type: application/json' -d '{"category":"short","reason":"not needed"}' "$URL/v1/evidence/$EK/retention"
assert_eq 202 "$ST" "a shorter retention is a request"
RQ=$(jq -r .request.id <<<"$BODY")
assert_eq '"permanent"' "$(ret "$EK" .retention.category)" "nothing changed yet"
call -X POST -H "$(auth "$LOU")" "$URL/v1/requests/$RQ/approve"
assert_eq 403 "$ST" "lou approves his own"
CUSTOS_TOKEN="$LIZ" "$CUSTOS" approve "$RQ" >/dev/null
assert_eq '"short"' "$(ret "$EK" .retention.category)" "applied after approval"
call -X PUT -H "$(auth "$LOU")" -H 'Content-Type: application/json' -d '{"category":"nope"}' "$URL/v1/evidence/$EK/retention"
assert_eq 400 "$ST" "an unknown category"

# The sweep proposes ES and EK (due), not EC (permanent) nor ED (90 days).
for i in $(seq 1 50); do
  n=$(curl -sS -H "$(auth "$LOU")" "$URL/v1/requests?state=proposed" | jq '.items | length')
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
call -H "$(auth "$LOU")" "$URL/v1/requests?state=proposed"
assert_eq "$(printf '%s\n' "$ES" "$EK" | sort | tr '\n' ' ')" "$(jq -r '.items[].evidence' <<<"$BODY" | sort | tr '\n' ' ')" "proposals"
assert_eq retention-sweep "$(jq -r '.items[0].requested_by.user' <<<"$BODY")" "made by the sweep"
P=$(jq -r --arg e "$ES" '.items[] | select(.evidence == $e) | .id' <<<"$BODY")
sleep 2.5 # more sweeps: no duplicate proposals
call -H "$(auth "$LOU")" "$URL/v1/requests?state=proposed"
assert_eq 2 "$(jq '.items | length' <<<"$BODY")" "one proposal per item"
curl -sSf -o /dev/null -H "$(auth "$LOU")" "$URL/v1/evidence/$ES/content" || fail "the sweep deleted something"
call -X POST -H "$(auth "$LIZ")" "$URL/v1/requests/$P/approve"
assert_eq 409 "$ST" "a proposal cannot be approved"
assert_match 'made a request by a person' "$(jq -r .detail <<<"$BODY")" "says why"
# Lou adopts it; Liz approves it.
R=$(CUSTOS_TOKEN="$LOU" "$CUSTOS" request delete "$ES" --reason "retention over, checked" 2>/dev/null)
assert_eq "$P" "$R" "the proposal became the request"
CUSTOS_TOKEN="$LIZ" "$CUSTOS" approve "$R" >/dev/null
assert_eq '"deleted"' "$(ret "$ES" .state)" "deleted after two people"
assert_match 'retention is over' "$(curl -sS -H "$(auth "$LOU")" "$URL/v1/requests/$R" | jq -r .proposal)" "the sweep's reason is kept"
out=$(CUSTOS_TOKEN="$LOU" "$CUSTOS" requests --state proposed)
assert_match "$EK" "$out" "custos requests lists the remaining proposal"
echo ok
