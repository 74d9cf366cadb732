#!/usr/bin/env bash
# t1107: GET /v1/evidence/{id}/content serves the original byte for byte
# (cmp), advertises Accept-Ranges, and honours single byte ranges: a-b, a-,
# a suffix -n (also one longer than the file), a last byte past the end is
# clamped; a range starting past the end is 416 with Content-Range
# "bytes */size"; an unknown evidence id is 404.
. "$(dirname "$0")/lib.sh"

get() { # get [curl args]: body to $T/got, headers to $T/h, sets ST
  rm -f "$T/got"
  ST=$(curl -sS -D "$T/h" -o "$T/got" -w '%{http_code}' -H "$(auth "$ADMIN")" "$@" "$CONTENT")
}
slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none; }
ranged() { # ranged RANGE FIRST LAST: expects 206 with those bytes
  get -H "Range: bytes=$1"
  assert_eq 206 "$ST" "Range bytes=$1"
  assert_eq "bytes $2-$3/$SIZE" "$(hdr Content-Range)" "Content-Range for bytes=$1"
  assert_eq $(($3 - $2 + 1)) "$(hdr Content-Length)" "Content-Length for bytes=$1"
  slice "$T/f" "$2" $(($3 - $2 + 1)) >"$T/want"
  cmp -s "$T/got" "$T/want" || fail "bytes served for Range bytes=$1 differ"
}

t_start_server
REC=$(t_token recorder --device cam-1107)
t_noise 1500000 "$T/f"
SIZE=1500000
ST=$(curl -sS -D "$T/h" -o /dev/null -w '%{http_code}' -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" \
  -H "Upload-Length: $SIZE" -H "Upload-Metadata: device_id $(b64 cam-1107),filename $(b64 'f 1.bin')" \
  --data-binary "@$T/f" "$URL/v1/uploads")
assert_eq 201 "$ST" "upload"
ev=$(hdr Custos-Evidence-Id)
CONTENT="$URL/v1/evidence/$ev/content"

get
assert_eq 200 "$ST" "GET content"
cmp -s "$T/got" "$T/f" || fail "content differs from the original"
assert_eq "$SIZE" "$(hdr Content-Length)" "Content-Length"
assert_eq bytes "$(hdr Accept-Ranges)" "Accept-Ranges"
assert_eq "" "$(hdr Content-Range)" "no Content-Range on a full response"

ranged 10-19 10 19
ranged 0-0 0 0
ranged 1499999-1499999 1499999 1499999
ranged 1000000- 1000000 1499999
ranged -100 1499900 1499999
ranged -2000000 0 1499999
ranged 1499990-2000000 1499990 1499999
ranged 4095-1052676 4095 1052676

for r in 1500000- 1500000-1500010 2000000-3000000; do
  get -H "Range: bytes=$r"
  assert_eq 416 "$ST" "Range bytes=$r"
  assert_eq "bytes */$SIZE" "$(hdr Content-Range)" "Content-Range on 416 for bytes=$r"
done

# An unknown evidence id.
CONTENT="$URL/v1/evidence/01900000-0000-7000-8000-000000000000/content"
get
assert_eq 404 "$ST" "content of unknown evidence"
assert_match '"error"' "$(cat "$T/got")" "404 JSON error"
CONTENT="$URL/v1/evidence/nope/content"
get
assert_eq 404 "$ST" "content of a malformed id"

t_stop_server
