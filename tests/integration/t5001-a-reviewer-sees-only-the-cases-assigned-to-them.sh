#!/usr/bin/env bash
# t5001: an admin assigns reviewers to cases by user name; a reviewer lists
# and reads only those cases and the evidence in them (record, content,
# events, time-stamp); everything else is 403 without a byte of it, an item
# that does not exist looks the same; taking the assignment away takes the
# access away; only an admin assigns; each assignment is a ledger event.
. "$(dirname "$0")/lib.sh"

get() { # get TOKEN PATH: status in ST, body in $T/got
  rm -f "$T/got"
  ST=$(curl -sS -o "$T/got" -w '%{http_code}' -H "$(auth "$1")" "$URL$2")
}

t_start_server
LEGAL=$(t_token legal --user lou)
RITA=$(t_token reviewer --user rita)
RAY=$(t_token reviewer --user ray)
export CUSTOS_SERVER="$URL"
CA=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case create "Case A")
CB=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case create "Case B")
printf 'footage of A' >"$T/a.bin"
printf 'footage of B' >"$T/b.bin"
EA=$(t_put "$ADMIN" "$T/a.bin" cam-1)
EB=$(t_put "$ADMIN" "$T/b.bin" cam-1)
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case link "$CA" "$EA" >/dev/null
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case link "$CB" "$EB" >/dev/null

# Only an admin assigns.
call -X PUT -H "$(auth "$LEGAL")" "$URL/v1/cases/$CA/reviewers/rita"
assert_eq 403 "$ST" "legal assigns"
call -X PUT -H "$(auth "$RITA")" "$URL/v1/cases/$CA/reviewers/rita"
assert_eq 403 "$ST" "a reviewer assigns herself"
out=$(CUSTOS_TOKEN="$ADMIN" "$CUSTOS" case assign "$CA" rita)
assert_match "rita assigned to case $CA" "$out" "cli assign"
call -X PUT -H "$(auth "$ADMIN")" "$URL/v1/cases/$CA/reviewers/rita"
assert_eq 200 "$ST" "assigning again changes nothing"
call -X PUT -H "$(auth "$ADMIN")" "$URL/v1/cases/$CA/reviewers/bad%20name"
assert_eq 400 "$ST" "a user name with a space"
call -H "$(auth "$ADMIN")" "$URL/v1/cases/$CA"
assert_eq '["rita"]' "$(jq -c .reviewers <<<"$BODY")" "the case lists its reviewers"

# Rita: case A and its item, nothing of B.
get "$RITA" /v1/cases
assert_eq 200 "$ST" "rita lists cases"
assert_eq "$CA" "$(jq -r '.items[].id' "$T/got")" "rita sees case A only"
get "$RAY" /v1/cases
assert_eq 0 "$(jq '.items | length' "$T/got")" "ray sees no case"
for p in "/v1/cases/$CA" "/v1/evidence/$EA" "/v1/evidence/$EA/content" "/v1/evidence/$EA/events" \
  "/v1/evidence?case=$CA"; do
  get "$RITA" "$p"
  assert_eq 200 "$ST" "rita GET $p"
  get "$RAY" "$p"
  assert_eq 403 "$ST" "ray GET $p"
  ! grep -q 'footage' "$T/got" || fail "ray got content from $p"
done
grep -q 'footage of A' <(curl -sS -H "$(auth "$RITA")" "$URL/v1/evidence/$EA/content") || fail "rita's content"
for p in "/v1/cases/$CB" "/v1/evidence/$EB" "/v1/evidence/$EB/content" "/v1/evidence/$EB/events" \
  "/v1/evidence/$EB/timestamp" "/v1/evidence?case=$CB" "/v1/evidence" "/v1/evidence?device=cam-1" \
  "/v1/evidence/0190aaaa-0000-7000-8000-000000000000" "/v1/cases/NOPE"; do
  get "$RITA" "$p"
  assert_eq 403 "$ST" "rita GET $p"
  assert_eq forbidden "$(jq -r .error "$T/got")" "rita GET $p error"
  ! grep -q "footage of B\|$(sha256sum "$T/b.bin" | cut -c1-64)" "$T/got" || fail "rita learned about B from $p"
done
assert_match 'not in a case assigned to rita' "$(curl -sS -H "$(auth "$RITA")" "$URL/v1/evidence/$EB")" "the 403 says why"
# A reviewer changes nothing.
call -X POST -H "$(auth "$RITA")" "$URL/v1/cases/$CA/evidence/$EB"
assert_eq 403 "$ST" "rita links"
call -X PATCH -H 'Content-Type: application/json' -H "$(auth "$RITA")" -d '{"status":"closed"}' "$URL/v1/cases/$CA"
assert_eq 403 "$ST" "rita closes"
# Linking B's item into A shows it to rita; unlinking hides it again.
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case link "$CA" "$EB" >/dev/null
get "$RITA" "/v1/evidence/$EB"
assert_eq 200 "$ST" "rita reads EB once it is in case A"
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case unlink "$CA" "$EB" >/dev/null
get "$RITA" "/v1/evidence/$EB"
assert_eq 403 "$ST" "rita after EB left case A"
# Unassigning takes the access away.
CUSTOS_TOKEN="$ADMIN" "$CUSTOS" case unassign "$CA" rita >/dev/null
get "$RITA" "/v1/evidence/$EA"
assert_eq 403 "$ST" "rita after unassignment"
get "$RITA" /v1/cases
assert_eq 0 "$(jq '.items | length' "$T/got")" "rita's case list after unassignment"
call -X DELETE -H "$(auth "$ADMIN")" "$URL/v1/cases/$CA/reviewers/rita"
assert_eq 404 "$ST" "unassigning someone not assigned"

t_sth_at_least 1 >/dev/null
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=0&end=999"
assert_eq "reviewer_assigned:rita reviewer_unassigned:rita" \
  "$(jq -r '[.entries[].event | select(.type | startswith("reviewer_")) | "\(.type):\(.user)"] | join(" ")' <<<"$BODY")" "assignment events"
echo ok
