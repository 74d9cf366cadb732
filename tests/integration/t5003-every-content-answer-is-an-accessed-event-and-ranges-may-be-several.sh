#!/usr/bin/env bash
# t5003: /content answers one range (206 + Content-Range), several ranges
# (206 multipart/byteranges whose parts carry the right bytes), a range past
# the end (416), If-None-Match (304); and every answer that carries content
# is an "accessed" event in the item's chain of custody naming who, which
# rendition, which bytes and from which address, while HEAD, 304 and 416
# leave none.
. "$(dirname "$0")/lib.sh"
t_start_server
LEGAL=$(t_token legal --user lou)
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 40)' >"$T/f" # 10240 bytes
E=$(t_put "$ADMIN" "$T/f" cam-7)
SHA=$(sha256sum "$T/f" | cut -c1-64)
C="$URL/v1/evidence/$E/content"
accessed() { curl -sS -H "$(auth "$ADMIN")" "$URL/v1/evidence/$E/events" | jq -c '[.events[].event | select(.type == "accessed")]'; }

# Whole file.
curl -sS -o "$T/all" -H "$(auth "$LEGAL")" "$C"
cmp -s "$T/f" "$T/all" || fail "whole content differs"
# One range.
call -o "$T/one" -H "$(auth "$LEGAL")" -H 'Range: bytes=100-199' "$C"
assert_eq 206 "$ST" "one range"
assert_eq "bytes 100-199/10240" "$(hdr Content-Range)" "Content-Range"
cmp -s "$T/one" <(tail -c +101 "$T/f" | head -c 100) || fail "one range's bytes"
# Several ranges, one of them a suffix.
call -o "$T/multi" -H "$(auth "$LEGAL")" -H 'Range: bytes=0-9, 5000-5099,-20' "$C"
assert_eq 206 "$ST" "several ranges"
ct=$(hdr Content-Type)
assert_match '^multipart/byteranges; boundary=' "$ct" "multipart Content-Type"
python3 - "$T/multi" "$T/f" "${ct#*boundary=}" <<'PY' || fail "multipart body does not hold the right parts"
import sys, email.parser
body, orig, boundary = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), sys.argv[3]
msg = email.parser.BytesParser().parsebytes(b'Content-Type: multipart/byteranges; boundary=' + boundary.encode() + b'\r\n\r\n' + body)
parts = msg.get_payload()
want = [(0, 9), (5000, 5099), (10220, 10239)]
assert len(parts) == 3, len(parts)
for p, (a, b) in zip(parts, want):
    assert p['Content-Range'] == 'bytes %d-%d/10240' % (a, b), p['Content-Range']
    assert p['Content-Type'] == 'application/octet-stream', p['Content-Type']
    data = p.get_payload(decode=True)
    assert data == orig[a:b + 1], (a, b, len(data))
PY
# Nothing to serve: 416, 304, HEAD.
call -o /dev/null -H "$(auth "$LEGAL")" -H 'Range: bytes=20000-' "$C"
assert_eq 416 "$ST" "past the end"
call -o /dev/null -H "$(auth "$LEGAL")" -H "If-None-Match: \"$SHA\"" "$C"
assert_eq 304 "$ST" "If-None-Match"
call -o /dev/null -I -H "$(auth "$LEGAL")" "$C"
assert_eq 200 "$ST" "HEAD"
# A malformed Range is ignored: the whole file, and its event says so.
call -o "$T/all2" -H "$(auth "$ADMIN")" -H 'Range: bytes=abc' "$C"
assert_eq 200 "$ST" "malformed range"

A=$(accessed)
assert_eq 4 "$(jq length <<<"$A")" "four answers carried content: $A"
assert_eq '["bytes=0-10239","bytes=100-199","bytes=0-9,5000-5099,10220-10239","bytes=0-10239"]' "$(jq -c 'map(.range)' <<<"$A")" "ranges"
assert_eq '["lou","lou","lou","admin"]' "$(jq -c 'map(.actor.user)' <<<"$A")" "who"
assert_eq '["legal","legal","legal","admin"]' "$(jq -c 'map(.actor.role)' <<<"$A")" "roles"
assert_eq '["127.0.0.1"]' "$(jq -c 'map(.address) | unique' <<<"$A")" "address"
assert_eq '["original"]' "$(jq -c 'map(.rendition) | unique' <<<"$A")" "rendition"
assert_eq "[\"$SHA\"]" "$(jq -c 'map(.sha256) | unique' <<<"$A")" "sha256"
# Reading metadata is not an access.
curl -sS -o /dev/null -H "$(auth "$LEGAL")" "$URL/v1/evidence/$E"
curl -sS -o /dev/null -H "$(auth "$LEGAL")" "$URL/v1/evidence?device=cam-7"
assert_eq 4 "$(accessed | jq length)" "metadata reads leave no accessed event"
echo ok
