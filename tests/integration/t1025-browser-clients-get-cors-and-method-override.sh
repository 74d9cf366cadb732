#!/usr/bin/env bash
# t1025: browser tus clients: a preflight OPTIONS is answered without a token
# and allows the tus methods and headers; responses to requests with an
# Origin expose the tus headers (Upload-Offset, Location, ...) so scripts can
# read them; X-HTTP-Method-Override: PATCH on a POST is a PATCH.
. "$(dirname "$0")/lib.sh"

lists() { # lists HEADER-VALUE ITEM: a comma list contains ITEM (case-insensitive)
  tr -d ' ' <<<"$1" | tr ',' '\n' | grep -qix "$2"
}
ORIGIN=(-H 'Origin: https://review.example')

t_start_server
REC=$(t_token recorder --device cam-1025)

call -X OPTIONS "${ORIGIN[@]}" -H 'Access-Control-Request-Method: PATCH' \
  -H 'Access-Control-Request-Headers: tus-resumable, upload-offset, content-type, authorization' "$URL/v1/uploads/x"
assert_match '^20[04]$' "$ST" "preflight status"
[ -n "$(hdr Access-Control-Allow-Origin)" ] || fail "preflight without Access-Control-Allow-Origin"
for m in POST HEAD PATCH DELETE; do
  lists "$(hdr Access-Control-Allow-Methods)" "$m" || fail "preflight does not allow $m"
done
for h in Tus-Resumable Upload-Length Upload-Metadata Upload-Offset Upload-Checksum Content-Type Authorization; do
  lists "$(hdr Access-Control-Allow-Headers)" "$h" || fail "preflight does not allow header $h"
done

call -X POST "${ORIGIN[@]}" "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 6' \
  -H "Upload-Metadata: device_id $(b64 cam-1025)" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST from a browser"
[ -n "$(hdr Access-Control-Allow-Origin)" ] || fail "no Access-Control-Allow-Origin on the POST"
exposed=$(hdr Access-Control-Expose-Headers)
for h in Location Upload-Offset Upload-Length Tus-Resumable Upload-Metadata Upload-Expires Custos-Evidence-Id Custos-SHA256; do
  lists "$exposed" "$h" || fail "$h is not exposed to scripts"
done
up=$(hdr Location)

printf 'abcdef' >"$T/x"
call -X POST -H 'X-HTTP-Method-Override: PATCH' "${ORIGIN[@]}" "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" \
  -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
assert_eq 204 "$ST" "POST with X-HTTP-Method-Override: PATCH"
assert_eq 6 "$(hdr Upload-Offset)" "offset after the overridden PATCH"
[ -n "$(hdr Custos-Evidence-Id)" ] || fail "no evidence after the overridden PATCH"

t_stop_server
