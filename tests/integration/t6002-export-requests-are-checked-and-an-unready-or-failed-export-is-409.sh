#!/usr/bin/env bash
# t6002: only legal and admin tokens export (a reviewer, even one assigned to
# the case, and a recorder get 403; no token 401); a case that does not exist
# is 404, and so is an export that does not exist; a bad request is 400 with
# a reason (evidence that does not exist or is not in the case, an unknown
# rendition, bad clip times or mode, a clip of an item not selected, an
# unknown field, a body that is not JSON, a case with nothing in it). An
# export that waits (here: for an original's time-stamp while the TSA is
# down) is 409 export_not_ready saying what it waits for, and finishes by
# itself once the TSA is back; an export whose clip cannot be made (a clip of
# a text file) ends failed with the reason, and its download is 409
# export_failed. Nothing is left of a failed export.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/lib_export.sh"

# An external TSA that is not up yet.
t_tsa_pki "$T/tsa"
TP=$(t_free_port)
t_start_server --tsa-url "http://127.0.0.1:$TP/tsa" --tsa-ca "$T/tsa/ca.pem" --stamp-retry-max 1
LEGAL=$(t_token legal --user lou)
REV=$(t_token reviewer --user rita)
RECO=$(t_token recorder --device cam-1)
C=INC-6002
x_case "$C" "Checked case"
x_case EMPTY-6002 "Nothing in it"
call -X PUT -H "$(auth "$ADMIN")" "$URL/v1/cases/$C/reviewers/rita"
[ "$ST" = 201 ] || [ "$ST" = 200 ] || [ "$ST" = 204 ] || fail "assign rita: $ST $BODY"
printf 'a note' >"$T/n.txt"
printf 'another' >"$T/o.txt"
E1=$(t_put "$ADMIN" "$T/n.txt" cam-1)
E2=$(t_put "$ADMIN" "$T/o.txt" cam-1) # not in the case
x_link "$C" "$E1"
J=(-H 'Content-Type: application/json')
post() { call -X POST "${J[@]}" -H "$(auth "${2:-$LEGAL}")" -d "$1" "$URL/v1/cases/${3:-$C}/exports"; }

# Who may.
post '{}' "$REV"
assert_eq 403 "$ST" "a reviewer assigned to the case may not export"
post '{}' "$RECO"
assert_eq 403 "$ST" "a recorder may not export"
call -X POST "${J[@]}" -d '{}' "$URL/v1/cases/$C/exports"
assert_eq 401 "$ST" "no token"
call -H "$(auth "$REV")" "$URL/v1/exports"
assert_eq 403 "$ST" "a reviewer may not list exports"

# 404s.
post '{}' "$LEGAL" NO-SUCH-CASE
assert_eq 404 "$ST" "an unknown case"
call -H "$(auth "$LEGAL")" "$URL/v1/exports/0190aaaa-0000-7000-8000-000000000000"
assert_eq 404 "$ST" "an unknown export"
call -H "$(auth "$LEGAL")" "$URL/v1/exports/0190aaaa-0000-7000-8000-000000000000/status"
assert_eq 404 "$ST" "the status of an unknown export"
call -H "$(auth "$LEGAL")" "$URL/v1/exports/not-an-id"
assert_eq 404 "$ST" "a malformed export id"

# 400s, each with a reason.
for body in "{\"evidence\":[\"0190aaaa-0000-7000-8000-000000000000\"]}" "{\"evidence\":[\"$E2\"]}" \
  '{"evidence":["../etc/passwd"]}' '{"evidence":[]}' '{"evidence":"all"}' '{"renditions":["thumbnail"]}' \
  '{"renditions":"master"}' "{\"clips\":[{\"evidence\":\"$E1\",\"start\":\"abc\",\"end\":\"2\"}]}" \
  "{\"clips\":[{\"evidence\":\"$E1\",\"start\":\"3\",\"end\":\"2\"}]}" \
  "{\"clips\":[{\"evidence\":\"$E1\",\"end\":\"2\"}]}" \
  "{\"clips\":[{\"evidence\":\"$E1\",\"start\":\"1\",\"end\":\"2\",\"mode\":\"fast\"}]}" \
  "{\"clips\":[{\"evidence\":\"$E2\",\"start\":\"1\",\"end\":\"2\"}]}" \
  "{\"evidence\":[\"$E1\"],\"clips\":[{\"evidence\":\"$E2\",\"start\":\"1\",\"end\":\"2\"}]}" \
  "{\"clips\":[{\"evidence\":\"$E1\",\"start\":\"1\",\"end\":\"2\",\"colour\":\"red\"}]}" \
  '{"colour":"red"}' 'not json' '[1,2]'; do
  post "$body"
  assert_eq 400 "$ST" "export with $body"
  [ -n "$(jq -r .detail <<<"$BODY")" ] || fail "no reason for $body"
done
post "{\"evidence\":[\"$E2\"]}"
assert_match "not in case $C" "$(jq -r .detail <<<"$BODY")" "the reason names the case"
post '{}' "$LEGAL" EMPTY-6002
assert_eq 400 "$ST" "a case with nothing in it"
assert_match "no evidence" "$(jq -r .detail <<<"$BODY")" "the reason"
call -H "$(auth "$LEGAL")" "$URL/v1/exports"
assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "refused requests made no export"

# Not ready: the original has no time-stamp while the TSA is down.
post '{}'
assert_eq 202 "$ST" "export while the TSA is down"
X=$(jq -r .id <<<"$BODY")
for i in $(seq 1 50); do
  call -H "$(auth "$LEGAL")" "$URL/v1/exports/$X/status"
  [ "$(jq -r '.waiting_for // empty' <<<"$BODY")" ] && break
  sleep 0.2
done
assert_eq queued "$(jq -r .state <<<"$BODY")" "it waits, queued"
assert_match "time-stamp of evidence $E1" "$(jq -r .waiting_for <<<"$BODY")" "what it waits for"
call -H "$(auth "$LEGAL")" "$URL/v1/exports/$X"
assert_eq 409 "$ST" "downloading an export that is not ready"
assert_eq export_not_ready "$(jq -r .error <<<"$BODY")" "error name"
assert_match "queued.*time-stamp of evidence $E1" "$(jq -r .detail <<<"$BODY")" "the detail says why"
[ -z "$(ls "$HOME_DIR/exports")" ] || fail "a waiting export wrote something: $(ls "$HOME_DIR/exports")"
# The TSA comes up; the stamp, then the export, go through.
t_tsa_start "$T/tsa" "$TP"
t_wait_200 "$URL/v1/evidence/$E1/timestamp" "$T/tok" 30
x_done "$X" 60
[ "$(jq -r '.waits' <<<"$BODY")" -ge 1 ] || fail "the record does not count its waits: $BODY"
call -H "$(auth "$LEGAL")" -o "$T/x.tar" "$URL/v1/exports/$X"
assert_eq 200 "$ST" "downloading it once done"

# Failed: a clip of a text file cannot be made.
post "{\"clips\":[{\"evidence\":\"$E1\",\"start\":\"0\",\"end\":\"1\"}]}"
assert_eq 202 "$ST" "an export with an impossible clip is accepted (checked when it runs)"
F=$(jq -r .id <<<"$BODY")
for i in $(seq 1 100); do
  call -H "$(auth "$LEGAL")" "$URL/v1/exports/$F/status"
  [ "$(jq -r .state <<<"$BODY")" = failed ] && break
  sleep 0.2
done
assert_eq failed "$(jq -r .state <<<"$BODY")" "the export fails"
assert_match "clip:copy:0:1000 of evidence $E1 cannot be made" "$(jq -r .error <<<"$BODY")" "with the clip's reason"
call -H "$(auth "$LEGAL")" "$URL/v1/exports/$F"
assert_eq 409 "$ST" "downloading a failed export"
assert_eq export_failed "$(jq -r .error <<<"$BODY")" "error name"
assert_match "cannot be made" "$(jq -r .detail <<<"$BODY")" "the detail"
[ ! -e "$HOME_DIR/exports/$F" ] && [ ! -e "$HOME_DIR/exports/$F.part" ] || fail "a failed export left files"
call -H "$(auth "$LEGAL")" "$URL/v1/evidence/$E1/events"
assert_eq 1 "$(jq '[.events[].event | select(.type == "exported")] | length' <<<"$BODY")" "only the finished export is in the chain"
t_stop_server
