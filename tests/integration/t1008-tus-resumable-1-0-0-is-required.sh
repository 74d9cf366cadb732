#!/usr/bin/env bash
# t1008: every tus request except OPTIONS must carry Tus-Resumable: 1.0.0;
# a missing or other version is 412 with Tus-Version and is not processed
# (no upload created, no byte written, nothing terminated).
. "$(dirname "$0")/lib.sh"

is_412() {
  assert_eq 412 "$ST" "$1"
  assert_match '(^|[ ,])1\.0\.0($|[ ,])' "$(hdr Tus-Version)" "Tus-Version on 412 ($1)"
  [[ "$1" == HEAD* ]] || assert_match '"error"' "$BODY" "412 JSON error ($1)"
}

t_start_server
REC=$(t_token recorder --device cam-0008)
md="device_id $(b64 cam-0008)"
printf 'abcdef' >"$T/x"

for v in none 0.2.2 1.0 1.0.0.0 " 1.0.1"; do
  hv=()
  [ "$v" = none ] || hv=(-H "Tus-Resumable: $v")
  call -X POST "${hv[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 6' -H "Upload-Metadata: $md" "$URL/v1/uploads"
  is_412 "POST with Tus-Resumable '$v'"
  assert_eq "" "$(hdr Location)" "no Location on 412"
done
assert_eq 0 "$(ls "$HOME_DIR/spool" | wc -l)" "no upload was created by refused POSTs"

call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 6' -H "Upload-Metadata: $md" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST with Tus-Resumable 1.0.0"
up=$(hdr Location)
id=${up##*/}

call -I -H "$(auth "$REC")" "$up"
is_412 "HEAD without Tus-Resumable"
assert_eq "" "$(hdr Upload-Offset)" "no Upload-Offset on a 412 HEAD"
call -X PATCH -H 'Tus-Resumable: 0.9.9' "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
is_412 "PATCH with Tus-Resumable 0.9.9"
call -X PATCH "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
is_412 "PATCH without Tus-Resumable"
assert_eq 0 "$(stat -c %s "$HOME_DIR/spool/$id.part")" "no byte written by refused PATCHes"
call -X DELETE -H "$(auth "$REC")" "$up"
is_412 "DELETE without Tus-Resumable"
[ -f "$HOME_DIR/spool/$id.part" ] || fail "a refused DELETE removed the upload"

call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq 200 "$ST" "HEAD with Tus-Resumable 1.0.0"
assert_eq 0 "$(hdr Upload-Offset)" "the upload is untouched"

t_stop_server
