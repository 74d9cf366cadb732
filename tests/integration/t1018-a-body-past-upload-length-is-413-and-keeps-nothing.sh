#!/usr/bin/env bash
# t1018: a PATCH that would run past Upload-Length is 413 and keeps nothing
# of that request: with Content-Length it is refused up front; a chunked body
# is cut off when it overruns, and the bytes that did fit are discarded too;
# the offset, spool size and final hash show no trace of it; a body on a
# complete upload is refused.
. "$(dirname "$0")/lib.sh"

CHUNKED=(-H 'Transfer-Encoding: chunked')
patch() { # patch OFFSET FILE [curl args]
  local off=$1 f=$2
  shift 2
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Offset: $off" "$@" --data-binary "@$f" "$up"
}
offset_is() {
  call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
  assert_eq "$1" "$(hdr Upload-Offset)" "HEAD Upload-Offset ($2)"
  assert_eq "$1" "$(stat -c %s "$HOME_DIR/spool/$id.part")" "spool size ($2)"
}

t_start_server
REC=$(t_token recorder --device cam-0018)
md="device_id $(b64 cam-0018)"
t_noise 100000 "$T/f"
dd if="$T/f" of="$T/a" bs=1000 count=40 status=none
dd if="$T/f" of="$T/b" bs=1000 skip=40 status=none
t_noise 60001 "$T/over"
t_noise 2000000 "$T/huge"

call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 100000' -H "Upload-Metadata: $md" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST"
up=$(hdr Location)
id=${up##*/}
patch 0 "$T/a"
assert_eq 204 "$ST" "first 40000 bytes"

patch 40000 "$T/over"
assert_eq 413 "$ST" "60001 bytes with Content-Length where 60000 remain"
offset_is 40000 "after a Content-Length overrun"
patch 40000 "$T/over" "${CHUNKED[@]}"
assert_eq 413 "$ST" "60001 bytes chunked where 60000 remain"
offset_is 40000 "after a chunked overrun by one byte"
patch 40000 "$T/huge" "${CHUNKED[@]}"
assert_eq 413 "$ST" "2 MB chunked where 60000 remain"
offset_is 40000 "after a chunked overrun by 2 MB"

patch 40000 "$T/b"
assert_eq 204 "$ST" "the right last 60000 bytes"
assert_eq 100000 "$(hdr Upload-Offset)" "final offset"
assert_eq "$(sha256sum "$T/f" | cut -d' ' -f1)" "$(hdr Custos-SHA256)" "final hash"

# A body on a complete upload is refused too.
patch 100000 "$T/a"
assert_match '^(409|413)$' "$ST" "PATCH with a body on a complete upload"

call -H "$(auth "$ADMIN")" "$URL/v1/evidence?device=cam-0018"
assert_eq 1 "$(jq '.items | length' <<<"$BODY")" "one evidence record"

t_stop_server
