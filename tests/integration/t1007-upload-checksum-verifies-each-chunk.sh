#!/usr/bin/env bash
# t1007: Upload-Checksum (tus checksum extension): the STANDARDS vector
# ("hello world", sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=) is 204 at offset 11;
# sha256 works too; a wrong digest is 460 and the chunk is discarded (HEAD
# offset and spool size unchanged, also for a chunk of several MiB that had
# reached the disk); an unknown algorithm or a malformed header is 400 with
# nothing kept; a retried good chunk then completes the upload intact; a
# creation-with-upload body is checked the same way.
. "$(dirname "$0")/lib.sh"

patch() { # patch OFFSET FILE CHECKSUM-HEADER-VALUE
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Offset: $1" \
    ${3:+-H "Upload-Checksum: $3"} --data-binary "@$2" "$up"
}
offset_is() {
  call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
  assert_eq "$1" "$(hdr Upload-Offset)" "HEAD Upload-Offset ($2)"
  assert_eq "$1" "$(stat -c %s "$HOME_DIR/spool/$id.part")" "spool size ($2)"
}
digest() { openssl dgst "-$1" -binary "$2" | base64 -w0; }

t_start_server
REC=$(t_token recorder --device cam-0007)
printf 'hello world' >"$T/hw"
t_noise 3000000 "$T/big"
cat "$T/hw" "$T/big" "$T/hw" >"$T/all"
total=$(stat -c %s "$T/all")
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H "Upload-Length: $total" \
  -H "Upload-Metadata: device_id $(b64 cam-0007)" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST"
up=$(hdr Location)
id=${up##*/}

# Wrong digest on the very first chunk: nothing kept.
patch 0 "$T/hw" "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA="
assert_eq 460 "$ST" "sha1 mismatch"
assert_match '"error"' "$BODY" "460 has a JSON error"
offset_is 0 "after a sha1 mismatch"

# The vector from the tus specification.
patch 0 "$T/hw" "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="
assert_eq 204 "$ST" "sha1 vector"
assert_eq 11 "$(hdr Upload-Offset)" "Upload-Offset after the sha1 vector"
offset_is 11 "after the sha1 vector"

# A multi-MiB chunk with a wrong sha256: it went through the spool buffers
# to disk, and must be cut off again.
patch 11 "$T/big" "sha256 $(printf x | openssl dgst -sha256 -binary | base64 -w0)"
assert_eq 460 "$ST" "sha256 mismatch on a 3 MB chunk"
offset_is 11 "after a sha256 mismatch on a 3 MB chunk"

# Unknown algorithm, malformed values: 400, nothing kept.
patch 11 "$T/big" "md5 $(digest md5 "$T/big")"
assert_eq 400 "$ST" "unsupported algorithm md5"
offset_is 11 "after an unsupported algorithm"
patch 11 "$T/big" "crc32 AAAAAA=="
assert_eq 400 "$ST" "unsupported algorithm crc32"
patch 11 "$T/big" "sha256"
assert_eq 400 "$ST" "Upload-Checksum without a digest"
patch 11 "$T/big" "sha256 not*base64"
assert_eq 400 "$ST" "Upload-Checksum with a digest that is not Base64"
patch 11 "$T/big" "sha256 $(digest sha1 "$T/big")"
assert_eq 400 "$ST" "Upload-Checksum sha256 with a 20-byte digest"
offset_is 11 "after malformed Upload-Checksum headers"

# The right sha256 for the same chunk.
patch 11 "$T/big" "sha256 $(digest sha256 "$T/big")"
assert_eq 204 "$ST" "sha256 match on a 3 MB chunk"
mid=$((11 + 3000000))
assert_eq "$mid" "$(hdr Upload-Offset)" "Upload-Offset after the big chunk"

# Last chunk: a mismatch leaves the upload open, a match completes it.
patch "$mid" "$T/hw" "sha256 $(digest sha256 "$T/big")"
assert_eq 460 "$ST" "mismatch on the last chunk"
assert_eq "" "$(hdr Custos-Evidence-Id)" "no evidence after a mismatch on the last chunk"
offset_is "$mid" "after a mismatch on the last chunk"
patch "$mid" "$T/hw" "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="
assert_eq 204 "$ST" "last chunk"
assert_eq "$total" "$(hdr Upload-Offset)" "final offset"
assert_eq "$(sha256sum "$T/all" | cut -d' ' -f1)" "$(hdr Custos-SHA256)" "final hash"

# The body of a creation-with-upload POST is checked the same way.
post() { # post CHECKSUM
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 11' \
    -H "Upload-Metadata: device_id $(b64 cam-0007)" -H "Upload-Checksum: $1" --data-binary "@$T/hw" "$URL/v1/uploads"
}
post "sha256 $(digest sha256 "$T/big")"
assert_eq 460 "$ST" "POST with a body and a wrong sha256"
assert_eq "" "$(hdr Custos-Evidence-Id)" "no evidence from a POST whose body failed its checksum"
if [ -n "$(hdr Location)" ]; then
  up=$(hdr Location)
  id=${up##*/}
  offset_is 0 "after a POST whose body failed its checksum"
fi
post "sha256 $(digest sha256 "$T/hw")"
assert_eq 201 "$ST" "POST with a body and the right sha256"
assert_eq 11 "$(hdr Upload-Offset)" "offset after a checksummed POST"
assert_eq "$(sha256sum "$T/hw" | cut -d' ' -f1)" "$(hdr Custos-SHA256)" "hash after a checksummed POST"

t_stop_server
