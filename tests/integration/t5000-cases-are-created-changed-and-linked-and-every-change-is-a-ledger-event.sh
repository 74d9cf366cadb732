#!/usr/bin/env bash
# t5000: the case lifecycle over HTTP and the CLI: POST /v1/cases answers 201
# with the case and its id; it lists, reads, changes (title, tags, status),
# links and unlinks evidence (an item can be in several cases); bad bodies
# are 400 with a reason, an id in use 409, a closed case refuses links with
# 409; and each change is a ledger event (case_created, case_updated,
# linked, unlinked) naming who made it.
. "$(dirname "$0")/lib.sh"
t_start_server
LEGAL=$(t_token legal --user lou)
J=(-H 'Content-Type: application/json')
export CUSTOS_SERVER="$URL"

call -X POST "${J[@]}" -H "$(auth "$LEGAL")" -d '{"title":"Stop on Main St","tags":["traffic"]}' "$URL/v1/cases"
assert_eq 201 "$ST" "create: $BODY"
C1=$(jq -r .id <<<"$BODY")
assert_match '^[0-9a-f-]{36}$' "$C1" "a case gets a UUID"
assert_eq "/v1/cases/$C1" "$(hdr Location)" "Location"
assert_eq open "$(jq -r .status <<<"$BODY")" "a new case is open"
assert_eq traffic "$(jq -r '.tags[0]' <<<"$BODY")" "tags kept"

C2=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case create "Incident 2026-0141" --id INC-2026-0141 --tag assault)
assert_eq INC-2026-0141 "$C2" "custos case create prints the id given"

# Bad input: 400 with a reason; a duplicate id 409.
for body in '{}' '{"title":""}' '{"title":"x","colour":"red"}' '{"title":"x","id":"../etc"}' \
  '{"title":"x","tags":"a"}' 'not json' '{"title":"a\u0007b"}'; do
  call -X POST "${J[@]}" -H "$(auth "$LEGAL")" -d "$body" "$URL/v1/cases"
  assert_eq 400 "$ST" "create with $body"
  [ -n "$(jq -r .detail <<<"$BODY")" ] || fail "no detail for $body"
done
call -X POST "${J[@]}" -H "$(auth "$LEGAL")" -d '{"title":"again","id":"INC-2026-0141"}' "$URL/v1/cases"
assert_eq 409 "$ST" "an id in use"

# Evidence into both cases.
printf 'clip one' >"$T/a.bin"
printf 'clip two' >"$T/b.bin"
E1=$(t_put "$ADMIN" "$T/a.bin" cam-1)
E2=$(t_put "$ADMIN" "$T/b.bin" cam-1)
call -X POST -H "$(auth "$LEGAL")" "$URL/v1/cases/$C1/evidence/$E1"
assert_eq 201 "$ST" "link: $BODY"
call -X POST -H "$(auth "$LEGAL")" "$URL/v1/cases/$C1/evidence/$E1"
assert_eq 200 "$ST" "linking again changes nothing"
assert_eq false "$(jq -r .changed <<<"$BODY")" "changed:false"
out=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case link "$C2" "$E1" "$E2")
assert_match "$E2 linked to $C2" "$out" "cli link"
call -X POST -H "$(auth "$LEGAL")" "$URL/v1/cases/$C1/evidence/0190aaaa-0000-7000-8000-000000000000"
assert_eq 404 "$ST" "linking an item that does not exist"
call -X POST -H "$(auth "$LEGAL")" "$URL/v1/cases/NOPE/evidence/$E1"
assert_eq 404 "$ST" "linking into a case that does not exist"

call -H "$(auth "$LEGAL")" "$URL/v1/evidence/$E1"
assert_eq "[\"$C1\",\"INC-2026-0141\"]" "$(jq -c '.cases | sort' <<<"$BODY")" "E1 is in both cases"
call -H "$(auth "$LEGAL")" "$URL/v1/cases/$C2"
assert_eq 200 "$ST" "get case"
assert_eq 2 "$(jq -r .evidence_count <<<"$BODY")" "C2 holds two items"
assert_eq "$(printf '%s\n' "$E1" "$E2" | sort | tr '\n' ' ')" "$(jq -r '.evidence[].id' <<<"$BODY" | sort | tr '\n' ' ')" "C2's evidence"
call -H "$(auth "$LEGAL")" "$URL/v1/evidence?case=$C2"
assert_eq 2 "$(jq '.items | length' <<<"$BODY")" "listing by case"

# Unlink.
call -X DELETE -H "$(auth "$LEGAL")" "$URL/v1/cases/$C2/evidence/$E1"
assert_eq 204 "$ST" "unlink"
call -X DELETE -H "$(auth "$LEGAL")" "$URL/v1/cases/$C2/evidence/$E1"
assert_eq 404 "$ST" "unlinking what is not linked"
call -H "$(auth "$LEGAL")" "$URL/v1/evidence/$E1"
assert_eq "[\"$C1\"]" "$(jq -c .cases <<<"$BODY")" "E1 left C2"

# Changes.
call -X PATCH "${J[@]}" -H "$(auth "$LEGAL")" -d '{"title":"Stop on Main Street","tags":["traffic","dui"]}' "$URL/v1/cases/$C1"
assert_eq 200 "$ST" "patch: $BODY"
assert_eq "Stop on Main Street" "$(jq -r .title <<<"$BODY")" "new title"
for body in '{"status":"archived"}' '{"id":"x"}' '{}' '{"reviewers":["a"]}'; do
  call -X PATCH "${J[@]}" -H "$(auth "$LEGAL")" -d "$body" "$URL/v1/cases/$C1"
  assert_eq 400 "$ST" "patch with $body"
done
out=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case close "$C2")
assert_match 'status +closed' "$out" "cli close"
call -X POST -H "$(auth "$LEGAL")" "$URL/v1/cases/$C2/evidence/$E1"
assert_eq 409 "$ST" "a closed case takes no new evidence"
assert_match 'closed' "$(jq -r .detail <<<"$BODY")" "the 409 says why"
call -H "$(auth "$LEGAL")" "$URL/v1/cases?status=closed"
assert_eq "INC-2026-0141" "$(jq -r '.items[].id' <<<"$BODY")" "listing closed cases"
call -H "$(auth "$LEGAL")" "$URL/v1/cases?tag=dui"
assert_eq "$C1" "$(jq -r '.items[].id' <<<"$BODY")" "listing by tag"
out=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" case ls)
assert_match "$C1 +open +Stop on Main Street" "$out" "cli ls"

# A recorder may not manage cases.
REC=$(t_token recorder --device cam-1)
call -X POST "${J[@]}" -H "$(auth "$REC")" -d '{"title":"x"}' "$URL/v1/cases"
assert_eq 403 "$ST" "recorder creates a case"

# The ledger: every change, with who.
t_sth_at_least 1 >/dev/null
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=0&end=999"
types=$(jq -r '[.entries[].event | select(.case != null) | .type] | join(" ")' <<<"$BODY")
assert_eq "case_created case_created linked linked linked unlinked case_updated case_updated" "$types" "case events in order"
assert_eq lou "$(jq -r '[.entries[].event | select(.type == "unlinked")][0].actor.user' <<<"$BODY")" "who unlinked"
assert_eq '{"from":"open","to":"closed"}' "$(jq -c '[.entries[].event | select(.type == "case_updated")][1].changes.status' <<<"$BODY")" "what changed"
# Links are in the item's chain of custody.
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$E1/events"
assert_eq "ingested linked linked unlinked" "$(jq -r '[.events[].event.type | select(. != "probed" and . != "timestamped" and . != "rendition")] | join(" ")' <<<"$BODY")" "E1's custody"
echo ok
