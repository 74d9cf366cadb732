#!/usr/bin/env bash
# t1004: Upload-Length: 0 needs no PATCH: the 201 already names the evidence
# (the SHA-256 of nothing), HEAD shows offset 0 of 0, the empty object is
# stored, and its content reads back as zero bytes.
. "$(dirname "$0")/lib.sh"

empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

t_start_server
REC=$(t_token recorder --device cam-0004)
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 0' \
  -H "Upload-Metadata: device_id $(b64 cam-0004),filename $(b64 empty.bin)" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST Upload-Length 0"
up=$(hdr Location)
[ -n "$up" ] || fail "no Location"
assert_eq 0 "$(hdr Upload-Offset)" "Upload-Offset on the 201"
assert_eq "$empty" "$(hdr Custos-SHA256)" "Custos-SHA256 of an empty file"
ev=$(hdr Custos-Evidence-Id)
[ -n "$ev" ] || fail "no Custos-Evidence-Id for an empty upload"

call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq 200 "$ST" "HEAD"
assert_eq 0 "$(hdr Upload-Offset)" "HEAD Upload-Offset"
assert_eq 0 "$(hdr Upload-Length)" "HEAD Upload-Length"

call -H "$(auth "$REC")" -H 'Accept: application/json' "$up"
assert_eq completed "$(jq -r .state <<<"$BODY")" "upload state"
assert_eq "$ev" "$(jq -r .evidence_id <<<"$BODY")" "upload evidence_id"

obj="$HOME_DIR/objects/sha256/e3/b0/$empty"
[ -f "$obj" ] || fail "empty object not stored"
assert_eq 0 "$(stat -c %s "$obj")" "empty object size"
assert_eq 444 "$(stat -c %a "$obj")" "empty object mode"

call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev"
assert_eq 200 "$ST" "GET evidence"
assert_eq 0 "$(jq -r .size <<<"$BODY")" "evidence size"
rm -f "$T/got"
curl -sS -o "$T/got" -w '%{http_code}' -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev/content" >"$T/st"
assert_eq 200 "$(cat "$T/st")" "GET content of an empty file"
[ ! -s "$T/got" ] || fail "content of an empty file is not empty"

t_stop_server
