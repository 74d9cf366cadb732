#!/usr/bin/env bash
# t1006: a PATCH whose Upload-Offset is not the upload's offset (behind or
# ahead) is 409 and changes nothing: HEAD offset, spool size and the final
# hash are as if it never came; a malformed Upload-Offset is 400; a PATCH or
# HEAD on an upload that never existed is 404 (HEAD without Upload-Offset).
. "$(dirname "$0")/lib.sh"

patch() { # patch OFFSET FILE
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Offset: $1" --data-binary "@$2" "$up"
}
offset_is() {
  call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
  assert_eq 200 "$ST" "HEAD ($2)"
  assert_eq "$1" "$(hdr Upload-Offset)" "HEAD Upload-Offset ($2)"
  assert_eq "$1" "$(stat -c %s "$HOME_DIR/spool/$id.part")" "spool size ($2)"
}

t_start_server
REC=$(t_token recorder --device cam-0006)
printf 'first-part|' >"$T/a"
printf 'second-part' >"$T/b"
printf 'XXXXXXXXXXX' >"$T/x"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 22' \
  -H "Upload-Metadata: device_id $(b64 cam-0006)" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST"
up=$(hdr Location)
id=${up##*/}

patch 0 "$T/a"
assert_eq 204 "$ST" "first PATCH"
offset_is 11 "after the first PATCH"

for bad in 0 5 12 21; do
  patch "$bad" "$T/x"
  assert_eq 409 "$ST" "PATCH at offset $bad when the upload is at 11"
  assert_match '"error"' "$BODY" "409 has a JSON error"
  assert_match '"detail"' "$BODY" "409 has a JSON detail"
  offset_is 11 "after a PATCH at offset $bad"
done
for bad in -1 abc 1.5 "" 99999999999999999999999; do
  patch "$bad" "$T/x"
  assert_eq 400 "$ST" "PATCH with Upload-Offset '$bad'"
  offset_is 11 "after Upload-Offset '$bad'"
done
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" --data-binary "@$T/x" "$up"
assert_eq 400 "$ST" "PATCH without Upload-Offset"
offset_is 11 "after a PATCH without Upload-Offset"

patch 11 "$T/b"
assert_eq 204 "$ST" "PATCH at the right offset"
assert_eq 22 "$(hdr Upload-Offset)" "final offset"
assert_eq "$(printf 'first-part|second-part' | sha256sum | cut -d' ' -f1)" "$(hdr Custos-SHA256)" \
  "the refused chunks left no trace in the hash"

# Unknown uploads.
nope="$URL/v1/uploads/01900000-0000-7000-8000-000000000000"
call -I "${TUS[@]}" -H "$(auth "$REC")" "$nope"
assert_eq 404 "$ST" "HEAD of an unknown upload"
assert_eq "" "$(hdr Upload-Offset)" "no Upload-Offset on a 404 HEAD"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$nope"
assert_eq 404 "$ST" "PATCH of an unknown upload"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" \
  "$URL/v1/uploads/not-an-id"
assert_eq 404 "$ST" "PATCH of a malformed upload id"

t_stop_server
