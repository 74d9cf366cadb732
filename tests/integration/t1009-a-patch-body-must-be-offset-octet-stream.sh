#!/usr/bin/env bash
# t1009: a PATCH whose body is not Content-Type application/offset+octet-stream
# (another type, or none) is 415 with a JSON error, and writes nothing; the
# right type (also with a parameter) is accepted.
. "$(dirname "$0")/lib.sh"


t_start_server
REC=$(t_token recorder --device cam-0009)
printf '0123456789' >"$T/x"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 20' \
  -H "Upload-Metadata: device_id $(b64 cam-0009)" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST"
up=$(hdr Location)
id=${up##*/}

for ct in application/octet-stream text/plain application/offset+octet-streamx "Content-Type:"; do
  if [ "$ct" = "Content-Type:" ]; then h=(-H 'Content-Type:'); else h=(-H "Content-Type: $ct"); fi
  call -X PATCH "${TUS[@]}" "${h[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
  assert_eq 415 "$ST" "PATCH with Content-Type '$ct'"
  assert_eq unsupported_media_type "$(jq -r .error <<<"$BODY")" "415 error name"
  [ -n "$(jq -r .detail <<<"$BODY")" ] || fail "415 without detail"
  call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
  assert_eq 0 "$(hdr Upload-Offset)" "offset after a 415 ($ct)"
done
assert_eq 0 "$(stat -c %s "$HOME_DIR/spool/$id.part")" "no byte written by 415s"

call -X PATCH "${TUS[@]}" -H 'Content-Type: application/offset+octet-stream; charset=binary' \
  -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
assert_eq 204 "$ST" "PATCH with the right type and a parameter"
assert_eq 10 "$(hdr Upload-Offset)" "offset"

t_stop_server
