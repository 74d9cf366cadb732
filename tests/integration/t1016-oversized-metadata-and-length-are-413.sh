#!/usr/bin/env bash
# t1016: limits: Upload-Metadata over 64 KiB is 413; Upload-Length over
# --max-upload is 413 (exactly the maximum is fine), with a JSON error and
# no upload created; Tus-Max-Size tells the maximum.
. "$(dirname "$0")/lib.sh"


t_start_server --max-upload 1000000
REC=$(t_token recorder --device cam-0016)
dev="device_id $(b64 cam-0016)"

# meta_of_size N: a valid Upload-Metadata header of exactly N bytes, made of
# the device and padding keys whose values stay small.
meta_of_size() {
  local n=$1 s=$dev v i=0 rest klen=1
  v=$(head -c 3000 /dev/zero | base64 -w0)
  while [ $((${#s} + 4010)) -lt $((n - 100)) ]; do s+=",k$i $v"; i=$((i + 1)); done
  rest=$((n - ${#s} - 2))
  while [ $(((rest - klen) % 4)) -ne 0 ]; do klen=$((klen + 1)); done
  s+=",$(head -c "$klen" /dev/zero | tr '\0' z) $(head -c $((rest - klen)) /dev/zero | tr '\0' A)"
  printf '%s' "$s"
}

for n in 65537 70000 100000; do
  big=$(meta_of_size $n)
  assert_eq "$n" "${#big}" "test bug: metadata size"
  call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 10' -H "Upload-Metadata: $big" "$URL/v1/uploads"
  assert_eq 413 "$ST" "Upload-Metadata of $n bytes"
  assert_eq too_large "$(jq -r .error <<<"$BODY")" "413 error name"
  [ -n "$(jq -r .detail <<<"$BODY")" ] || fail "413 without detail"
  assert_eq "" "$(hdr Location)" "no Location on 413"
done
assert_eq 0 "$(ls "$HOME_DIR/spool" | wc -l)" "no spool file for refused metadata"

# Exactly 64 KiB is accepted, and echoed verbatim.
ok=$(meta_of_size 65536)
assert_eq 65536 "${#ok}" "test bug: metadata size"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 10' -H "Upload-Metadata: $ok" "$URL/v1/uploads"
assert_eq 201 "$ST" "Upload-Metadata of exactly 65536 bytes"
up=$(hdr Location)
call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq "$ok" "$(hdr Upload-Metadata)" "a 64 KiB Upload-Metadata is echoed verbatim"

# Length.
call -X OPTIONS "$URL/v1/uploads"
assert_eq 1000000 "$(hdr Tus-Max-Size)" "Tus-Max-Size"
n=$(ls "$HOME_DIR/spool" | wc -l)
for len in 1000001 2000000 9223372036854775807; do
  call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H "Upload-Length: $len" -H "Upload-Metadata: $dev" "$URL/v1/uploads"
  assert_eq 413 "$ST" "Upload-Length $len over --max-upload 1000000"
  assert_eq too_large "$(jq -r .error <<<"$BODY")" "413 error name"
  assert_eq "" "$(hdr Location)" "no Location on 413"
done
assert_eq "$n" "$(ls "$HOME_DIR/spool" | wc -l)" "no spool file for a refused length"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 1000000' -H "Upload-Metadata: $dev" "$URL/v1/uploads"
assert_eq 201 "$ST" "Upload-Length equal to --max-upload"

t_stop_server
