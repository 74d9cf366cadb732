#!/usr/bin/env bash
# t1014: termination: DELETE of an unfinished upload is 204 and removes its
# spool file; afterwards HEAD, PATCH and DELETE are 404 or 410 (HEAD without
# Upload-Offset) and GET /v1/uploads/{id} no longer says active; a completed
# upload is evidence and cannot be deleted through tus.
. "$(dirname "$0")/lib.sh"


t_start_server
REC=$(t_token recorder --device cam-0014)
md="device_id $(b64 cam-0014)"
printf 'some bytes' >"$T/x"
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 100' -H "Upload-Metadata: $md" \
  --data-binary "@$T/x" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST"
up=$(hdr Location)
id=${up##*/}
[ -f "$HOME_DIR/spool/$id.part" ] || fail "no spool file"

call -X DELETE "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq 204 "$ST" "DELETE"
assert_eq 1.0.0 "$(hdr Tus-Resumable)" "DELETE Tus-Resumable"
[ ! -e "$HOME_DIR/spool/$id.part" ] || fail "spool file still there after DELETE"

call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_match '^(404|410)$' "$ST" "HEAD after DELETE"
assert_eq "" "$(hdr Upload-Offset)" "no Upload-Offset after DELETE"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 10' --data-binary "@$T/x" "$up"
assert_match '^(404|410)$' "$ST" "PATCH after DELETE"
[ ! -e "$HOME_DIR/spool/$id.part" ] || fail "a PATCH after DELETE recreated the spool file"
call -X DELETE "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_match '^(404|410)$' "$ST" "DELETE after DELETE"
call -H "$(auth "$REC")" -H 'Accept: application/json' "$up"
if [ "$ST" = 200 ]; then
  assert_match '^(gone|terminated|deleted)$' "$(jq -r .state <<<"$BODY")" "upload state after DELETE"
else
  assert_match '^(404|410)$' "$ST" "GET upload after DELETE"
fi

# A completed upload is evidence: DELETE is refused and the evidence stays.
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 10' -H "Upload-Metadata: $md" \
  --data-binary "@$T/x" "$URL/v1/uploads"
assert_eq 201 "$ST" "complete POST"
up=$(hdr Location)
ev=$(hdr Custos-Evidence-Id)
sha=$(hdr Custos-SHA256)
call -X DELETE "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_match '^4[0-9][0-9]$' "$ST" "DELETE of a completed upload"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev"
assert_eq 200 "$ST" "evidence still there"
[ -f "$HOME_DIR/objects/sha256/${sha:0:2}/${sha:2:2}/$sha" ] || fail "object removed"

t_stop_server
