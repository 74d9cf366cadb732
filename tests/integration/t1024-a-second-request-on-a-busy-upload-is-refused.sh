#!/usr/bin/env bash
# t1024: one request at a time per upload: while a PATCH is in flight, a
# second PATCH and a DELETE on the same upload are refused (423 or 409, both
# of which tus clients retry) and change nothing; the first PATCH then
# completes normally, and other uploads are not held up meanwhile.
. "$(dirname "$0")/lib.sh"

new_upload() {
  call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H "Upload-Length: $1" \
    -H "Upload-Metadata: device_id $(b64 cam-1024)" "$URL/v1/uploads"
  assert_eq 201 "$ST" "POST"
  local l
  l=$(hdr Location)
  printf '%s' "${l##*/}"
}

t_start_server
REC=$(t_token recorder --device cam-1024)
printf '0123456789abcdefghij' >"$T/f"
id=$(new_upload 20)

# The first PATCH: headers and 5 of its 20 bytes, then a pause.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'PATCH /v1/uploads/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer %s\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 20\r\n\r\n01234' \
  "$id" "$REC" >&3
# Wait until the server holds the upload: a probe PATCH at a wrong offset is
# 409 (and harmless) while the upload is free, 423 once it is busy (a server
# that answers busy with 409 too just makes this wait its full 5 s).
for _ in $(seq 1 100); do
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 999' "$URL/v1/uploads/$id"
  [ "$ST" = 409 ] || break
  sleep 0.05
done

printf 'XXXXXXXXXXXXXXXXXXXX' >"$T/x"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" \
  "$URL/v1/uploads/$id"
assert_match '^(409|423)$' "$ST" "a second PATCH while the first is in flight"
call -X DELETE "${TUS[@]}" -H "$(auth "$REC")" "$URL/v1/uploads/$id"
assert_match '^(409|423)$' "$ST" "DELETE while a PATCH is in flight"
[ -f "$HOME_DIR/spool/$id.part" ] || fail "DELETE removed a busy upload"

# Another upload is not held up.
other=$(new_upload 3)
printf 'abc' >"$T/abc"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/abc" \
  "$URL/v1/uploads/$other"
assert_eq 204 "$ST" "PATCH of another upload meanwhile"

# The first PATCH finishes.
printf '56789abcdefghij' >&3
resp=$(timeout 10 cat <&3 || true)
exec 3>&-
assert_match '^HTTP/1\.1 204' "$resp" "the first PATCH's response"
assert_match $'Upload-Offset: 20\r' "$resp" "the first PATCH's Upload-Offset"
assert_match "Custos-SHA256: $(sha256sum "$T/f" | cut -d' ' -f1)" "$resp" "the first PATCH's hash"

t_stop_server
