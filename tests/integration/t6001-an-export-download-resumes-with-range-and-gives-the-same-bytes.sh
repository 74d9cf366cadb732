#!/usr/bin/env bash
# t6001: the tar of an export is served in pieces: a download cut short and
# resumed with curl -C - (Range) gives the same bytes as one whole download,
# and so does a download assembled from many arbitrary ranges; If-Range with
# the ETag (or the Last-Modified date) honours the range and with another tag
# sends the whole tar (200); If-None-Match gives 304; a range past the end is
# 416 with Content-Range bytes */size; several ranges get the whole tar;
# HEAD gives the headers without a body; two downloads are byte-identical,
# and each is logged (downloads are not "accessed" events).
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/lib_export.sh"

t_start_server
C=INC-6001
x_case "$C" "Range case"
t_noise 3000000 "$T/a.bin"
t_noise 70000 "$T/b.bin"
E1=$(t_put "$ADMIN" "$T/a.bin" cam-1)
E2=$(t_put "$ADMIN" "$T/b.bin" cam-1)
x_link "$C" "$E1" "$E2"
x_ready "$E1" "$E2"
x_export "$C" '{}'
X=$XID
x_done "$X"
SIZE=$(jq -r .tar_size <<<"$BODY")
TAG=$(jq -r .tagmanifest_sha256 <<<"$BODY")
A=(-H "$(auth "$ADMIN")")
U="$URL/v1/exports/$X"

curl -sS -o "$T/whole.tar" -D "$T/h" "${A[@]}" "$U"
assert_eq "$SIZE" "$(stat -c %s "$T/whole.tar")" "whole download"
LM=$(t_header Last-Modified "$T/h")
curl -sS -o "$T/again.tar" "${A[@]}" "$U"
cmp "$T/whole.tar" "$T/again.tar" || fail "two downloads differ"

# A broken download, resumed.
head -c 1234567 "$T/whole.tar" >"$T/resumed.tar"
st=$(curl -sS -C - -o "$T/resumed.tar" -w '%{http_code}' "${A[@]}" "$U")
assert_eq 206 "$st" "the resumed request"
cmp "$T/whole.tar" "$T/resumed.tar" || fail "the resumed download differs"

# Arbitrary ranges, put together.
: >"$T/pieces.tar"
off=0
while [ "$off" -lt "$SIZE" ]; do
  len=$(((RANDOM * 37 + 1) % 400000 + 1))
  end=$((off + len - 1))
  curl -sS -r "$off-$end" "${A[@]}" "$U" >>"$T/pieces.tar"
  off=$((end + 1))
done
cmp "$T/whole.tar" "$T/pieces.tar" || fail "the tar put together from ranges differs"

# Range details.
call -r 100-199 "${A[@]}" "$U"
assert_eq 206 "$ST" "a range"
assert_eq "bytes 100-199/$SIZE" "$(hdr Content-Range)" "Content-Range"
call -r -512 -o "$T/tail" "${A[@]}" "$U"
assert_eq 206 "$ST" "a suffix range"
cmp "$T/tail" <(tail -c 512 "$T/whole.tar") || fail "the suffix range"
tail -c 1024 "$T/whole.tar" | cmp - <(head -c 1024 /dev/zero) || fail "the tar ends with two zero blocks"
call -r "$SIZE-" "${A[@]}" "$U"
assert_eq 416 "$ST" "a range past the end"
assert_eq "bytes */$SIZE" "$(hdr Content-Range)" "416 Content-Range"
call -r 0-9,20-29 -o "$T/multi" "${A[@]}" "$U"
assert_eq 200 "$ST" "several ranges: the whole tar"
cmp "$T/multi" "$T/whole.tar" || fail "several ranges"
call -r 0-9 -H "If-Range: \"$TAG\"" "${A[@]}" "$U"
assert_eq 206 "$ST" "If-Range with the ETag"
call -r 0-9 -H "If-Range: $LM" "${A[@]}" "$U"
assert_eq 206 "$ST" "If-Range with the Last-Modified date"
call -r 0-9 -o "$T/ifr" -H 'If-Range: "not-this-one"' "${A[@]}" "$U"
assert_eq 200 "$ST" "If-Range with another tag: the whole tar"
cmp "$T/ifr" "$T/whole.tar" || fail "If-Range mismatch body"
call -H "If-None-Match: \"$TAG\"" "${A[@]}" "$U"
assert_eq 304 "$ST" "If-None-Match"
call -I "${A[@]}" "$U"
assert_eq 200 "$ST" "HEAD"
assert_eq "$SIZE" "$(hdr Content-Length)" "HEAD Content-Length"
assert_eq "\"$TAG\"" "$(hdr ETag)" "HEAD ETag"

# Not an "accessed" event per item; logged.
call "${A[@]}" "$URL/v1/evidence/$E1/events"
assert_eq 0 "$(jq '[.events[].event | select(.type == "accessed")] | length' <<<"$BODY")" "no accessed events"
assert_eq 1 "$(jq '[.events[].event | select(.type == "exported")] | length' <<<"$BODY")" "one exported event"
grep -q "export $X .* downloaded by admin" "$SERVER_LOG" || fail "downloads are not logged"
t_stop_server
