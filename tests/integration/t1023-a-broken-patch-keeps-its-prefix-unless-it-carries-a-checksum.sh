#!/usr/bin/env bash
# t1023: a PATCH whose client goes away mid-body keeps the prefix that
# arrived (tus: keep as many received bytes as possible), unless it carried
# Upload-Checksum, which makes a chunk all or nothing; either way HEAD then
# tells the offset to resume from and the upload ends with the right hash.
# (Crashes and start-up sweeps are the t2xxx family's.)
. "$(dirname "$0")/lib.sh"

slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none; }
head_offset() {
  call -I "${TUS[@]}" -H "$(auth "$REC")" "$URL/v1/uploads/$id"
  assert_eq 200 "$ST" "HEAD"
  hdr Upload-Offset
}
# raw_patch OFFSET DECLARED SENT [EXTRA-HEADER]: opens a PATCH on fd 3 that
# declares DECLARED body bytes and sends only SENT of them (from OFFSET).
raw_patch() {
  exec 3<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'PATCH /v1/uploads/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer %s\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: %s\r\nContent-Length: %s\r\n%s\r\n' \
    "$id" "$REC" "$1" "$2" "${4:+$4$'\r\n'}" >&3
  slice "$T/f" "$1" "$3" >&3
}
# settle: waits until the server has let go of the upload (HEAD offset stable
# and a PATCH no longer answered 423).
settle() {
  local prev="" cur
  for _ in $(seq 1 50); do
    sleep 0.1
    cur=$(head_offset)
    [ "$cur" = "$prev" ] && return 0
    prev=$cur
  done
}
finish() { # finish WHAT: sends the rest from the HEAD offset and checks the hash
  local off
  off=$(head_offset)
  cmp -s -n "$off" "$T/f" "$HOME_DIR/spool/$id.part" || fail "spool prefix differs ($1)"
  slice "$T/f" "$off" $((SIZE - off)) >"$T/rest"
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Offset: $off" --data-binary "@$T/rest" \
    "$URL/v1/uploads/$id"
  assert_eq 204 "$ST" "PATCH the rest ($1)"
  assert_eq "$SIZE" "$(hdr Upload-Offset)" "final offset ($1)"
  assert_eq "$(sha256sum "$T/f" | cut -d' ' -f1)" "$(hdr Custos-SHA256)" "final hash ($1)"
}
new_upload() {
  call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H "Upload-Length: $SIZE" \
    -H "Upload-Metadata: device_id $(b64 cam-1023)" "$URL/v1/uploads"
  assert_eq 201 "$ST" "POST"
  id=$(hdr Location)
  id=${id##*/}
}

SIZE=400000
t_noise $SIZE "$T/f"
t_start_server
REC=$(t_token recorder --device cam-1023)

# 1. The client goes away mid-body, no checksum: the prefix is kept.
new_upload
raw_patch 0 300000 100000
sleep 0.3
exec 3>&-
settle
kept=$(head_offset)
[ "$kept" -gt 0 ] && [ "$kept" -le 100000 ] || fail "a broken PATCH kept $kept of the 100000 bytes sent"
finish "after a broken PATCH"

# 2. The same with Upload-Checksum: nothing is kept.
new_upload
raw_patch 0 300000 100000 "Upload-Checksum: sha256 $(slice "$T/f" 0 300000 | openssl dgst -sha256 -binary | base64 -w0)"
sleep 0.3
exec 3>&-
settle
assert_eq 0 "$(head_offset)" "offset after a broken PATCH with a checksum"
finish "after a broken PATCH with a checksum"

t_stop_server
