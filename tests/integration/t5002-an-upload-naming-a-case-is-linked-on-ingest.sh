#!/usr/bin/env bash
# t5002: an upload whose metadata names case_id is in that case from its
# commit: an existing case gets a linked event; a case nobody opened yet is
# created (titled by its id, origin upload) in the same ledger write; two
# uploads racing to create the same case make one case and one
# case_created event; a kill -9 and restart keep it all.
. "$(dirname "$0")/lib.sh"
t_start_server
LEGAL=$(t_token legal --user lou)
export CUSTOS_SERVER="$URL"
"$CUSTOS" case create "Known case" --id INC-1 --token "$LEGAL" >/dev/null

put_case() { # put_case FILE CASE: prints the evidence id
  local len
  len=$(stat -c %s "$1")
  curl -sS -D - -o /dev/null -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$ADMIN")" -H "Upload-Length: $len" \
    -H "Upload-Metadata: device_id $(b64 cam-5),case_id $(b64 "$2")" --data-binary "@$1" "$URL/v1/uploads" |
    t_header Custos-Evidence-Id /dev/stdin
}
printf 'one' >"$T/1"
E1=$(put_case "$T/1" INC-1)
[ -n "$E1" ] || fail "upload into INC-1"
call -H "$(auth "$LEGAL")" "$URL/v1/cases/INC-1"
assert_eq "$E1" "$(jq -r '.evidence[0].id' <<<"$BODY")" "linked into the existing case"
assert_eq "Known case" "$(jq -r .title <<<"$BODY")" "the existing case is unchanged"

# Eight uploads race to open the same new case.
for i in 1 2 3 4 5 6 7 8; do printf 'race %s' "$i" >"$T/r$i"; done
pids=()
for i in 1 2 3 4 5 6 7 8; do
  put_case "$T/r$i" INC-NEW >"$T/e$i" &
  pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the server is a child too
call -H "$(auth "$LEGAL")" "$URL/v1/cases/INC-NEW"
assert_eq 200 "$ST" "the new case exists"
assert_eq 8 "$(jq -r .evidence_count <<<"$BODY")" "all eight are in it"
assert_eq INC-NEW "$(jq -r .title <<<"$BODY")" "titled by its id"
assert_eq upload "$(jq -r .origin <<<"$BODY")" "origin upload"
assert_eq open "$(jq -r .status <<<"$BODY")" "open"

t_kill_server
t_start_server
call -H "$(auth "$LEGAL")" "$URL/v1/cases/INC-NEW"
assert_eq 8 "$(jq -r .evidence_count <<<"$BODY")" "after kill -9"
t_sth_at_least 1 >/dev/null
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=0&end=999"
assert_eq 1 "$(jq '[.entries[].event | select(.type == "case_created" and .case == "INC-NEW")] | length' <<<"$BODY")" "one case_created"
assert_eq 9 "$(jq '[.entries[].event | select(.type == "linked")] | length' <<<"$BODY")" "nine linked events"
assert_eq 9 "$(jq '[.entries[].event | select(.type == "linked" and .origin == "upload")] | length' <<<"$BODY")" "marked as from the upload"
e3=$(cat "$T/e3")
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$e3/events"
assert_eq "ingested linked" "$(jq -r '[.events[].event.type | select(. == "ingested" or . == "linked")] | join(" ")' <<<"$BODY")" "the item's custody starts with ingest and link"
echo ok
