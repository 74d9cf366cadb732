#!/usr/bin/env bash
# t1013: only recorder and admin tokens may use /v1/uploads: reviewer and
# legal tokens get 403 on POST (with or without a body), HEAD, PATCH and
# DELETE, and nothing is created or changed.
. "$(dirname "$0")/lib.sh"


t_start_server
REC=$(t_token recorder --device cam-0013)
REVIEWER=$(t_token reviewer --user rita)
LEGAL=$(t_token legal --user lou)
md="device_id $(b64 cam-0013)"
printf 'abcdef' >"$T/x"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 6' -H "Upload-Metadata: $md" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST by a recorder"
up=$(hdr Location)
id=${up##*/}

for who in REVIEWER LEGAL; do
  tok=${!who}
  call -X POST "${TUS[@]}" -H "$(auth "$tok")" -H 'Upload-Length: 6' -H "Upload-Metadata: $md" "$URL/v1/uploads"
  assert_eq 403 "$ST" "POST by $who"
  assert_eq forbidden "$(jq -r .error <<<"$BODY")" "403 error name for $who"
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$tok")" -H 'Upload-Length: 6' -H "Upload-Metadata: $md" \
    --data-binary "@$T/x" "$URL/v1/uploads"
  assert_eq 403 "$ST" "POST with a body by $who"
  call -I "${TUS[@]}" -H "$(auth "$tok")" "$up"
  assert_eq 403 "$ST" "HEAD by $who"
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$tok")" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
  assert_eq 403 "$ST" "PATCH by $who"
  call -X DELETE "${TUS[@]}" -H "$(auth "$tok")" "$up"
  assert_eq 403 "$ST" "DELETE by $who"
done
assert_eq 1 "$(ls "$HOME_DIR/spool" | wc -l)" "only the recorder's upload exists"
assert_eq 0 "$(stat -c %s "$HOME_DIR/spool/$id.part")" "nothing written by refused PATCHes"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence"
assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "no evidence"

t_stop_server
