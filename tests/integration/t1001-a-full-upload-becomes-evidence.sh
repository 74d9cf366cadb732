#!/usr/bin/env bash
# t1001: a tus upload created with POST and sent in one PATCH becomes evidence:
# HEAD shows offset 0, no-store and the metadata verbatim; the last PATCH
# names the evidence and its SHA-256 (equal to sha256sum's); the object is
# stored read-only (0444) under objects/sha256/ab/cd/<hex>; the spool file is
# gone; GET /v1/uploads/{id} and GET /v1/evidence/{id} tell the same story.
. "$(dirname "$0")/lib.sh"


t_start_server
REC=$(t_token recorder --device cam-0001)
LEGAL=$(t_token legal --user lee)

t_noise 200000 "$T/clip.bin"
size=$(stat -c %s "$T/clip.bin")
want=$(sha256sum "$T/clip.bin" | cut -d' ' -f1)
md="filename $(b64 'clip 01.mp4'),device_id $(b64 cam-0001),officer_id $(b64 off-7),recorded_at $(b64 2026-03-04T05:06:07Z),case_id $(b64 case-42)"

# Creation.
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H "Upload-Length: $size" -H "Upload-Metadata: $md" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST status"
assert_eq 1.0.0 "$(hdr Tus-Resumable)" "POST Tus-Resumable"
up=$(hdr Location)
assert_match '/v1/uploads/[0-9a-f-]{36}$' "$up" "Location"
id=${up##*/}
[[ "$up" == http* ]] || up="$URL$up"
[ -f "$HOME_DIR/spool/$id.part" ] || fail "no spool file for a new upload"

# HEAD before any byte.
call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq 200 "$ST" "HEAD status"
assert_eq 0 "$(hdr Upload-Offset)" "HEAD Upload-Offset of a new upload"
assert_eq "$size" "$(hdr Upload-Length)" "HEAD Upload-Length"
assert_eq no-store "$(hdr Cache-Control)" "HEAD Cache-Control"
assert_eq "$md" "$(hdr Upload-Metadata)" "HEAD echoes Upload-Metadata verbatim"
assert_eq 1.0.0 "$(hdr Tus-Resumable)" "HEAD Tus-Resumable"

# The whole body in one PATCH.
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' \
  --data-binary "@$T/clip.bin" "$up"
assert_eq 204 "$ST" "PATCH status"
assert_eq "$size" "$(hdr Upload-Offset)" "PATCH Upload-Offset"
assert_eq "$want" "$(hdr Custos-SHA256)" "Custos-SHA256 equals sha256sum"
ev=$(hdr Custos-Evidence-Id)
assert_match '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "$ev" "Custos-Evidence-Id is a UUIDv7"

# The object: named by its hash, fanned out, read-only, byte-identical.
obj="$HOME_DIR/objects/sha256/${want:0:2}/${want:2:2}/$want"
[ -f "$obj" ] || fail "object file $obj missing"
assert_eq 444 "$(stat -c %a "$obj")" "object mode"
cmp -s "$obj" "$T/clip.bin" || fail "object differs from the uploaded file"
[ ! -e "$HOME_DIR/spool/$id.part" ] || fail "spool file left behind after commit"

# HEAD after completion still reports the offset (== length).
call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq 200 "$ST" "HEAD after completion"
assert_eq "$size" "$(hdr Upload-Offset)" "HEAD Upload-Offset after completion"
assert_eq "$size" "$(hdr Upload-Length)" "HEAD Upload-Length after completion"

# GET /v1/uploads/{id} says which evidence the upload became.
call -H "$(auth "$REC")" -H 'Accept: application/json' "$up"
assert_eq 200 "$ST" "GET upload status"
assert_match '^application/json' "$(hdr Content-Type)" "GET upload Content-Type"
assert_eq completed "$(jq -r .state <<<"$BODY")" "upload state"
assert_eq "$ev" "$(jq -r .evidence_id <<<"$BODY")" "upload evidence_id"
assert_eq "$want" "$(jq -r .sha256 <<<"$BODY")" "upload sha256"
assert_eq "$size" "$(jq -r .offset <<<"$BODY")" "upload offset"
assert_eq "$size" "$(jq -r .length <<<"$BODY")" "upload length"
assert_eq "$id" "$(jq -r .id <<<"$BODY")" "upload id"

# The evidence record carries the metadata.
call -H "$(auth "$LEGAL")" "$URL/v1/evidence/$ev"
assert_eq 200 "$ST" "GET evidence status"
assert_eq "$ev" "$(jq -r .id <<<"$BODY")" "evidence id"
assert_eq "$want" "$(jq -r .sha256 <<<"$BODY")" "evidence sha256"
assert_eq "$size" "$(jq -r .size <<<"$BODY")" "evidence size"
assert_eq cam-0001 "$(jq -r .device_id <<<"$BODY")" "evidence device_id"
assert_eq off-7 "$(jq -r .officer_id <<<"$BODY")" "evidence officer_id"
assert_eq case-42 "$(jq -r .case_id <<<"$BODY")" "evidence case_id"
assert_eq 'clip 01.mp4' "$(jq -r .filename <<<"$BODY")" "evidence filename"
assert_match '^2026-03-04T05:06:07(\.0+)?Z$' "$(jq -r .recorded_at <<<"$BODY")" "evidence recorded_at"
assert_eq "$id" "$(jq -r .upload_id <<<"$BODY")" "evidence upload_id"

# "Verbatim" means byte for byte, even for a header with spaces around the
# pairs and a key without a value.
md2="filename $(b64 b.bin) , device_id $(b64 cam-0001),is_confidential"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 5' -H "Upload-Metadata: $md2" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST with loosely spaced metadata"
call -I "${TUS[@]}" -H "$(auth "$REC")" "$(hdr Location)"
assert_eq "$md2" "$(hdr Upload-Metadata)" "HEAD echoes loosely spaced Upload-Metadata verbatim"

t_stop_server
