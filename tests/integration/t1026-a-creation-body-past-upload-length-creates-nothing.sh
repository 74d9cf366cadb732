#!/usr/bin/env bash
# t1026: creation-with-upload whose body does not fit Upload-Length is 413
# and creates nothing: not when Content-Length already says so (no Location,
# no spool file), not when a chunked body overruns, and not when
# Upload-Length is 0 (the body is refused, not silently dropped into an
# empty piece of evidence).
. "$(dirname "$0")/lib.sh"

CHUNKED=(-H 'Transfer-Encoding: chunked')
nothing_left() { # nothing_left WHAT
  assert_eq "" "$(hdr Custos-Evidence-Id)" "evidence id ($1)"
  assert_eq 0 "$(ls "$HOME_DIR/spool" | wc -l)" "spool files left ($1)"
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence?device=cam-1026"
  assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "evidence records ($1)"
}

t_start_server
REC=$(t_token recorder --device cam-1026)
md="device_id $(b64 cam-1026)"
t_noise 60001 "$T/over"
printf 'hello' >"$T/five"

call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 60000' -H "Upload-Metadata: $md" \
  --data-binary "@$T/over" "$URL/v1/uploads"
assert_eq 413 "$ST" "POST with 60001 body bytes (Content-Length) for Upload-Length 60000"
assert_eq "" "$(hdr Location)" "Location on a 413 POST"
nothing_left "Content-Length over Upload-Length"

call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 0' -H "Upload-Metadata: $md" \
  --data-binary "@$T/five" "$URL/v1/uploads"
assert_eq 413 "$ST" "POST with 5 body bytes for Upload-Length 0"
nothing_left "a body with Upload-Length 0"
call -X POST "${TUS[@]}" "${OCT[@]}" "${CHUNKED[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 0' \
  -H "Upload-Metadata: $md" --data-binary "@$T/five" "$URL/v1/uploads"
assert_eq 413 "$ST" "chunked POST with 5 body bytes for Upload-Length 0"
nothing_left "a chunked body with Upload-Length 0"

call -X POST "${TUS[@]}" "${OCT[@]}" "${CHUNKED[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 60000' \
  -H "Upload-Metadata: $md" --data-binary "@$T/over" "$URL/v1/uploads"
assert_eq 413 "$ST" "chunked POST with 60001 body bytes for Upload-Length 60000"
nothing_left "a chunked body over Upload-Length"

t_stop_server
