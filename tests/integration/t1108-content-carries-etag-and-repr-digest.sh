#!/usr/bin/env bash
# t1108: the content response names the original by its hash: ETag is the
# quoted SHA-256 hex, Repr-Digest is sha-256=:<base64 of the raw digest>:
# (as openssl dgst -sha256 -binary | base64 computes it), on full, range and
# HEAD responses alike; If-None-Match with that ETag (alone, in a list, or *)
# is 304 with no body; another ETag still gets 200; a client's filename with
# CR LF and quotes cannot add or break a response header.
. "$(dirname "$0")/lib.sh"

get() { rm -f "$T/got"; ST=$(curl -sS -D "$T/h" -o "$T/got" -w '%{http_code}' -H "$(auth "$LEGAL")" "$@" "$CONTENT"); }

t_start_server
REC=$(t_token recorder --device cam-1108)
LEGAL=$(t_token legal --user lou)
t_noise 77777 "$T/f"
hex=$(sha256sum "$T/f" | cut -d' ' -f1)
b64d=$(openssl dgst -sha256 -binary "$T/f" | base64 -w0)
ST=$(curl -sS -D "$T/h" -o /dev/null -w '%{http_code}' -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" \
  -H 'Upload-Length: 77777' -H "Upload-Metadata: device_id $(b64 cam-1108),filename $(b64 $'evil"\r\nX-Injected: 1\r\n.mp4')" \
  --data-binary "@$T/f" "$URL/v1/uploads")
assert_eq 201 "$ST" "upload"
CONTENT="$URL/v1/evidence/$(hdr Custos-Evidence-Id)/content"

get
assert_eq 200 "$ST" "GET content"
assert_eq "\"$hex\"" "$(hdr ETag)" "ETag"
assert_eq "sha-256=:$b64d:" "$(hdr Repr-Digest)" "Repr-Digest"
assert_eq "$hex" "$(sha256sum "$T/got" | cut -d' ' -f1)" "served bytes hash to the ETag"

assert_eq "" "$(hdr X-Injected)" "a filename cannot inject a header"
disp=$(hdr Content-Disposition)
assert_match '^attachment' "$disp" "Content-Disposition"
[[ "$disp" != *$'\n'* && "$disp" != *'"evil'* ]] || fail "Content-Disposition carries the raw filename: $disp"

get -I
assert_eq 200 "$ST" "HEAD content"
assert_eq 77777 "$(hdr Content-Length)" "HEAD Content-Length"
assert_eq "\"$hex\"" "$(hdr ETag)" "ETag on HEAD"
assert_eq "sha-256=:$b64d:" "$(hdr Repr-Digest)" "Repr-Digest on HEAD"

get -H 'Range: bytes=100-199'
assert_eq 206 "$ST" "range"
assert_eq "\"$hex\"" "$(hdr ETag)" "ETag on 206"
assert_eq "sha-256=:$b64d:" "$(hdr Repr-Digest)" "Repr-Digest on 206 describes the whole representation"

for inm in "\"$hex\"" "\"0000\", \"$hex\"" "*" "W/\"$hex\""; do
  get -H "If-None-Match: $inm"
  assert_eq 304 "$ST" "If-None-Match: $inm"
  [ ! -s "$T/got" ] || fail "a body on 304 ($inm)"
  assert_eq "\"$hex\"" "$(hdr ETag)" "ETag on 304"
done
for inm in "\"$(printf x | sha256sum | cut -d' ' -f1)\"" "\"${hex:0:32}\""; do
  get -H "If-None-Match: $inm"
  assert_eq 200 "$ST" "If-None-Match with another ETag ($inm)"
  cmp -s "$T/got" "$T/f" || fail "content after a non-matching If-None-Match"
done

t_stop_server
