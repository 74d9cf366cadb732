#!/usr/bin/env bash
# t1012: an upload belongs to the token that created it: another recorder
# token (even for the same device) and an admin token get 403 on HEAD,
# PATCH, DELETE and GET /v1/uploads/{id} status changes nothing; the owner
# then finishes it normally.
. "$(dirname "$0")/lib.sh"


t_start_server
OWNER=$(t_token recorder --device cam-0012)
SAME=$(t_token recorder --device cam-0012)
OTHER=$(t_token recorder --device cam-9999)
ADMIN2=$(t_token admin)
printf 'part-one..' >"$T/a"
printf 'part-two..' >"$T/b"
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$OWNER")" -H 'Upload-Length: 20' \
  -H "Upload-Metadata: device_id $(b64 cam-0012)" --data-binary "@$T/a" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST by the owner"
assert_eq 10 "$(hdr Upload-Offset)" "offset after the first chunk"
up=$(hdr Location)
id=${up##*/}

for who in SAME OTHER ADMIN2 ADMIN; do
  tok=${!who}
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$tok")" -H 'Upload-Offset: 10' --data-binary "@$T/b" "$up"
  assert_eq 403 "$ST" "PATCH by $who"
  assert_eq "" "$(hdr Custos-Evidence-Id)" "no evidence from a PATCH by $who"
  call -X DELETE "${TUS[@]}" -H "$(auth "$tok")" "$up"
  assert_eq 403 "$ST" "DELETE by $who"
  [ -f "$HOME_DIR/spool/$id.part" ] || fail "DELETE by $who removed the spool file"
done
for who in SAME OTHER ADMIN2; do
  tok=${!who}
  call -I "${TUS[@]}" -H "$(auth "$tok")" "$up"
  assert_eq 403 "$ST" "HEAD by $who"
  assert_eq "" "$(hdr Upload-Offset)" "no Upload-Offset for $who"
done
for who in SAME OTHER; do
  tok=${!who}
  call -H "$(auth "$tok")" -H 'Accept: application/json' "$up"
  assert_eq 403 "$ST" "GET upload status by $who"
done
assert_eq 10 "$(stat -c %s "$HOME_DIR/spool/$id.part")" "spool size after the refused requests"

call -I "${TUS[@]}" -H "$(auth "$OWNER")" "$up"
assert_eq 200 "$ST" "HEAD by the owner"
assert_eq 10 "$(hdr Upload-Offset)" "the owner sees its offset unchanged"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$OWNER")" -H 'Upload-Offset: 10' --data-binary "@$T/b" "$up"
assert_eq 204 "$ST" "PATCH by the owner"
assert_eq 20 "$(hdr Upload-Offset)" "final offset"
assert_eq "$(cat "$T/a" "$T/b" | sha256sum | cut -d' ' -f1)" "$(hdr Custos-SHA256)" "final hash"

t_stop_server
