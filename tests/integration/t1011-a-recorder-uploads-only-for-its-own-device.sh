#!/usr/bin/env bash
# t1011: a recorder token is bound to one device: metadata naming another
# device is 403 (nothing created); naming its own device, or none at all,
# is accepted and the evidence carries the token's device.
. "$(dirname "$0")/lib.sh"


t_start_server
RECA=$(t_token recorder --device cam-A)
t_token recorder --device cam-B >/dev/null
printf 'xyz' >"$T/x"

for other in cam-B cam-a cam-A2 "cam-A "; do
  call -X POST "${TUS[@]}" -H "$(auth "$RECA")" -H 'Upload-Length: 3' \
    -H "Upload-Metadata: device_id $(b64 "$other"),filename $(b64 x.bin)" "$URL/v1/uploads"
  assert_eq 403 "$ST" "recorder of cam-A uploading for '$other'"
  assert_eq "" "$(hdr Location)" "no Location on 403"
  [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "403 without a JSON detail"
  # Also with the body in the POST.
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$RECA")" -H 'Upload-Length: 3' \
    -H "Upload-Metadata: device_id $(b64 "$other")" --data-binary "@$T/x" "$URL/v1/uploads"
  assert_eq 403 "$ST" "recorder of cam-A uploading for '$other' (creation-with-upload)"
done
assert_eq 0 "$(ls "$HOME_DIR/spool" | wc -l)" "refused uploads left no spool file"
assert_eq 0 "$(find "$HOME_DIR/objects" -type f | wc -l)" "refused uploads left no object"

for md in "device_id $(b64 cam-A)" "filename $(b64 nodevice.bin)"; do
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$RECA")" -H 'Upload-Length: 3' \
    -H "Upload-Metadata: $md" --data-binary "@$T/x" "$URL/v1/uploads"
  assert_eq 201 "$ST" "recorder of cam-A with metadata '$md'"
  ev=$(hdr Custos-Evidence-Id)
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev"
  assert_eq cam-A "$(jq -r .device_id <<<"$BODY")" "evidence device for metadata '$md'"
done

t_stop_server
