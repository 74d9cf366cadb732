#!/usr/bin/env bash
# t1003: creation-with-upload: a POST that carries the whole file answers 201
# with Location, Upload-Offset == length and the evidence headers; a POST
# that carries only a first chunk answers 201 with the offset reached, and
# PATCHes finish it; a body that is not offset+octet-stream is refused (415).
. "$(dirname "$0")/lib.sh"


t_start_server
REC=$(t_token recorder --device cam-0003)
md="device_id $(b64 cam-0003),filename $(b64 whole.bin)"

# The whole file in the POST.
t_noise 300000 "$T/whole"
want=$(sha256sum "$T/whole" | cut -d' ' -f1)
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 300000' \
  -H "Upload-Metadata: $md" --data-binary "@$T/whole" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST with the whole body"
assert_match '/v1/uploads/[0-9a-f-]{36}$' "$(hdr Location)" "Location"
assert_eq 300000 "$(hdr Upload-Offset)" "Upload-Offset after a complete POST"
assert_eq "$want" "$(hdr Custos-SHA256)" "Custos-SHA256"
[ -n "$(hdr Custos-Evidence-Id)" ] || fail "no Custos-Evidence-Id on a complete POST"
cmp -s "$HOME_DIR/objects/sha256/${want:0:2}/${want:2:2}/$want" "$T/whole" || fail "object differs"

# Only a first chunk in the POST.
t_noise 5000 "$T/f"
dd if="$T/f" of="$T/a" bs=1 count=1234 status=none
dd if="$T/f" of="$T/b" bs=1 skip=1234 status=none
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 5000' \
  -H "Upload-Metadata: $md" --data-binary "@$T/a" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST with a first chunk"
assert_eq 1234 "$(hdr Upload-Offset)" "Upload-Offset after a partial POST"
assert_eq "" "$(hdr Custos-Evidence-Id)" "no evidence after a partial POST"
up=$(hdr Location)
call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq 1234 "$(hdr Upload-Offset)" "HEAD after a partial POST"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 1234' \
  --data-binary "@$T/b" "$up"
assert_eq 204 "$ST" "PATCH the rest"
assert_eq 5000 "$(hdr Upload-Offset)" "Upload-Offset at the end"
assert_eq "$(sha256sum "$T/f" | cut -d' ' -f1)" "$(hdr Custos-SHA256)" "Custos-SHA256 of the two parts"

# A body of the wrong type: nothing is created.
before=$(ls "$HOME_DIR/spool" | wc -l)
call -X POST "${TUS[@]}" -H 'Content-Type: application/octet-stream' -H "$(auth "$REC")" \
  -H 'Upload-Length: 5000' -H "Upload-Metadata: $md" --data-binary "@$T/a" "$URL/v1/uploads"
assert_eq 415 "$ST" "POST body with Content-Type application/octet-stream"
assert_eq "" "$(hdr Location)" "no Location on 415"
assert_eq "$before" "$(ls "$HOME_DIR/spool" | wc -l)" "no spool file for a refused POST"
assert_eq unsupported_media_type "$(jq -r .error <<<"$BODY")" "415 error name"

t_stop_server
