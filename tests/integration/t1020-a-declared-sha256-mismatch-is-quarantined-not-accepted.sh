#!/usr/bin/env bash
# t1020: the client's sha256 metadata is checked at completion: a mismatch
# answers 460, never makes evidence, keeps the bytes in HOME/quarantine/,
# records why (GET /v1/uploads/{id}: state quarantined, a reason) and the
# upload is gone for tus (HEAD 410, PATCH 410); a matching sha256 (any case)
# is accepted and recorded as verified.
. "$(dirname "$0")/lib.sh"


t_start_server
REC=$(t_token recorder --device cam-0020)
t_noise 50000 "$T/f"
real=$(sha256sum "$T/f" | cut -d' ' -f1)
wrong=$(printf 'something else' | sha256sum | cut -d' ' -f1)
md="device_id $(b64 cam-0020),filename $(b64 f.bin),sha256 $(b64 "$wrong")"

call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 50000' -H "Upload-Metadata: $md" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST"
up=$(hdr Location)
id=${up##*/}
dd if="$T/f" of="$T/a" bs=1000 count=20 status=none
dd if="$T/f" of="$T/b" bs=1000 skip=20 status=none
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/a" "$up"
assert_eq 204 "$ST" "first chunk (no verdict yet)"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 20000' --data-binary "@$T/b" "$up"
assert_eq 460 "$ST" "last chunk of a file whose sha256 differs from the declared one"
assert_eq "" "$(hdr Custos-Evidence-Id)" "no Custos-Evidence-Id on a mismatch"
assert_match '"error"' "$BODY" "460 has a JSON error"

# The bytes are kept, in quarantine, as received.
q=$(find "$HOME_DIR/quarantine" -type f | head -n 1)
[ -n "$q" ] || fail "nothing in HOME/quarantine"
assert_eq 1 "$(find "$HOME_DIR/quarantine" -type f | wc -l)" "quarantined files"
cmp -s "$q" "$T/f" || fail "the quarantined file is not the bytes received"
[ ! -e "$HOME_DIR/spool/$id.part" ] || fail "spool file still there"
assert_eq 0 "$(find "$HOME_DIR/objects" -type f | wc -l)" "no object stored"

# Why, in the upload's record.
call -H "$(auth "$REC")" -H 'Accept: application/json' "$up"
assert_eq 200 "$ST" "GET upload"
assert_eq quarantined "$(jq -r .state <<<"$BODY")" "upload state"
reason=$(jq -r '.reason // empty' <<<"$BODY")
assert_match "$wrong" "$reason" "the reason names the declared hash"
assert_match "$real" "$reason" "the reason names the actual hash"
assert_eq null "$(jq -r '.evidence_id' <<<"$BODY")" "no evidence_id for a quarantined upload"

# Gone for tus.
call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_eq 410 "$ST" "HEAD of a quarantined upload"
assert_eq "" "$(hdr Upload-Offset)" "no Upload-Offset on 410"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 50000' --data-binary "@$T/b" "$up"
assert_match '^(404|410)$' "$ST" "PATCH of a quarantined upload"
call -X DELETE "${TUS[@]}" -H "$(auth "$REC")" "$up"
assert_match '^(404|410)$' "$ST" "DELETE of a quarantined upload"
cmp -s "$q" "$T/f" || fail "DELETE touched the quarantined bytes"

# No evidence anywhere.
call -H "$(auth "$ADMIN")" "$URL/v1/evidence?device=cam-0020"
assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "evidence for the device"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence?sha256=$real"
assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "evidence with the real hash"

# A mismatch on a single-request upload (creation-with-upload) too.
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 50000' -H "Upload-Metadata: $md" \
  --data-binary "@$T/f" "$URL/v1/uploads"
assert_eq 460 "$ST" "creation-with-upload of a mismatching file"
assert_eq "" "$(hdr Custos-Evidence-Id)" "no evidence id"
assert_eq 2 "$(find "$HOME_DIR/quarantine" -type f | wc -l)" "quarantined files"

# The right hash, in upper case, is accepted.
upper=$(tr a-f A-F <<<"$real")
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 50000' \
  -H "Upload-Metadata: device_id $(b64 cam-0020),sha256 $(b64 "$upper")" --data-binary "@$T/f" "$URL/v1/uploads"
assert_eq 201 "$ST" "upload with the right declared sha256"
ev=$(hdr Custos-Evidence-Id)
assert_eq "$real" "$(hdr Custos-SHA256)" "Custos-SHA256"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev"
assert_eq "$real" "$(jq -r .sha256 <<<"$BODY")" "evidence sha256"
assert_eq true "$(jq -r .client_sha256_verified <<<"$BODY")" "client hash recorded as verified"

# Each refusal is in the ledger: the bytes' hash, the hash declared, the device.
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=0&end=999"
assert_eq 200 "$ST" "ledger entries"
q=$(jq -c '[.entries[].event | select(.type == "quarantined")]' <<<"$BODY")
assert_eq 2 "$(jq length <<<"$q")" "quarantined events"
assert_eq "$real $real" "$(jq -r '[.[].sha256] | join(" ")' <<<"$q")" "the refused bytes' hash in the events"
assert_eq "cam-0020 cam-0020" "$(jq -r '[.[].device_id] | join(" ")' <<<"$q")" "the device in the events"
[ "$(jq -r '[.[] | select(.client_sha256 != .sha256)] | length' <<<"$q")" = 2 ] ||
  fail "the events do not keep the declared hash: $q"

t_stop_server
