#!/usr/bin/env bash
# t1019: PATCH (and POST) bodies sent with Transfer-Encoding: chunked, with
# no Content-Length, are stored like any other: small and multi-MiB chunks,
# mixed with Content-Length ones, with and without Upload-Checksum, give the
# right offsets and an object identical to the file.
. "$(dirname "$0")/lib.sh"

CHUNKED=(-H 'Transfer-Encoding: chunked')
slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none; }

t_start_server
REC=$(t_token recorder --device cam-0019)
md="device_id $(b64 cam-0019)"
t_noise 2600000 "$T/f"
size=2600000

# The first 777 bytes chunked in the POST itself.
slice "$T/f" 0 777 >"$T/c"
call -X POST "${TUS[@]}" "${OCT[@]}" "${CHUNKED[@]}" -H "$(auth "$REC")" -H "Upload-Length: $size" \
  -H "Upload-Metadata: $md" --data-binary "@$T/c" "$URL/v1/uploads"
assert_eq 201 "$ST" "chunked POST"
assert_eq 777 "$(hdr Upload-Offset)" "offset after a chunked POST"
up=$(hdr Location)
grep -qi '^Content-Length' "$T/h" && [ "$(hdr Content-Length)" != 0 ] && fail "unexpected body on 201"

off=777
for step in "1500000 chunked" "100000 plain" "300000 chunked+sum" "rest chunked"; do
  len=${step%% *}
  mode=${step#* }
  [ "$len" = rest ] && len=$((size - off))
  slice "$T/f" "$off" "$len" >"$T/c"
  extra=()
  case $mode in
  chunked) extra=("${CHUNKED[@]}") ;;
  chunked+sum) extra=("${CHUNKED[@]}" -H "Upload-Checksum: sha256 $(openssl dgst -sha256 -binary "$T/c" | base64 -w0)") ;;
  esac
  call -X PATCH "${TUS[@]}" "${OCT[@]}" "${extra[@]}" -H "$(auth "$REC")" -H "Upload-Offset: $off" \
    --data-binary "@$T/c" "$up"
  assert_eq 204 "$ST" "PATCH of $len bytes ($mode)"
  off=$((off + len))
  assert_eq "$off" "$(hdr Upload-Offset)" "offset after $len bytes ($mode)"
done

want=$(sha256sum "$T/f" | cut -d' ' -f1)
assert_eq "$want" "$(hdr Custos-SHA256)" "Custos-SHA256 after chunked PATCHes"
cmp -s "$HOME_DIR/objects/sha256/${want:0:2}/${want:2:2}/$want" "$T/f" || fail "object differs from the file"

# A chunked PATCH with a wrong checksum is still all or nothing.
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 20' -H "Upload-Metadata: $md" "$URL/v1/uploads"
up=$(hdr Location)
id=${up##*/}
printf '0123456789' >"$T/c"
call -X PATCH "${TUS[@]}" "${OCT[@]}" "${CHUNKED[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' \
  -H 'Upload-Checksum: sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=' --data-binary "@$T/c" "$up"
assert_eq 460 "$ST" "chunked PATCH with a wrong checksum"
assert_eq 0 "$(stat -c %s "$HOME_DIR/spool/$id.part")" "nothing kept from it"

t_stop_server
