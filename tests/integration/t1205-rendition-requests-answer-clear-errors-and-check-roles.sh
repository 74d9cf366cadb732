#!/usr/bin/env bash
# t1205: GET /v1/evidence/{id}/content?rendition= answers what is wrong:
# an unknown rendition is 400 (JSON "error"); a failed master (an MP4 whose
# moov was never written) is 404 rendition_failed whose detail says "moov";
# a rendition with nothing to make (random bytes) is 404
# rendition_not_applicable; one not made yet (a long clip, one worker) is 404
# rendition_not_ready. Reviewer and recorder tokens get 403, legal gets the
# bytes. custos get --rendition bogus is a usage error (exit 2), and custos
# get of a rendition that is not there fails and writes nothing.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
mk() { ffmpeg -hide_banner -loglevel error -y "$@" || fail "ffmpeg could not make a fixture: $*"; }
SRC=(-f lavfi -i "testsrc=size=320x240:rate=25" -f lavfi -i "sine=frequency=440")
mk "${SRC[@]}" -t 3 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$T/full.mp4"
n=$(stat -c %s "$T/full.mp4")
head -c $((n * 60 / 100)) "$T/full.mp4" >"$T/cut.mp4"
t_noise 40000 "$T/random.bin"
mk -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440" -t 20 \
  -c:v mpeg2video -q:v 4 -c:a mp2 -shortest -f mpegts "$T/long.ts"

t_start_server
REV=$(t_token reviewer --user rita)
RECORDER=$(t_token recorder --device cam-1205)
LEGAL=$(t_token legal --user lee)
[ -n "$REV" ] && [ -n "$RECORDER" ] && [ -n "$LEGAL" ] || fail "could not create the tokens"

FULL=$(t_push "$T/full.mp4" cam-1205)
t_rend_settle "$FULL"
CUT=$(t_push "$T/cut.mp4" cam-1205)
RND=$(t_push "$T/random.bin" cam-1205)
for id in "$CUT" "$RND"; do t_rend_settle "$id"; done
content() { call -H "$(auth "${2:-$ADMIN}")" "$URL/v1/evidence/$1/content?rendition=$3"; }

# An unknown rendition.
content "$FULL" "$ADMIN" bogus
assert_eq 400 "$ST" "rendition=bogus"
assert_match '^application/json' "$(hdr Content-Type)" "Content-Type of the 400"
assert_eq invalid "$(jq -r .error <<<"$BODY")" "the 400's error"
assert_match 'master' "$(jq -r .detail <<<"$BODY")" "the 400's detail names the renditions there are"

# A master that failed.
content "$CUT" "$ADMIN" master
assert_eq 404 "$ST" "the failed master"
assert_eq rendition_failed "$(jq -r .error <<<"$BODY")" "error of the failed master ($BODY)"
assert_match 'moov' "$(jq -r .detail <<<"$BODY")" "detail of the failed master"
assert_match "$FULL" "$(jq -r .detail <<<"$BODY")" "the failed master's detail names the complete sibling"

# Nothing to make.
for k in master access framehash poster; do
  content "$RND" "$ADMIN" "$k"
  assert_eq 404 "$ST" "the $k of random bytes"
  assert_eq rendition_not_applicable "$(jq -r .error <<<"$BODY")" "error of the $k of random bytes ($BODY)"
  [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "no detail for the $k of random bytes"
done
# The original is always there.
content "$RND" "$ADMIN" original
assert_eq 200 "$ST" "the original of random bytes"

# Roles: only legal and admin read renditions.
content "$FULL" "$REV" master
assert_eq 403 "$ST" "a reviewer asks for a master"
assert_eq forbidden "$(jq -r .error <<<"$BODY")" "error for a reviewer"
content "$FULL" "$RECORDER" master
assert_eq 403 "$ST" "a recorder asks for its own device's master"
assert_eq forbidden "$(jq -r .error <<<"$BODY")" "error for a recorder"
ST=$(curl -sS -o "$T/legal.mkv" -w '%{http_code}' -H "$(auth "$LEGAL")" "$URL/v1/evidence/$FULL/content?rendition=master")
assert_eq 200 "$ST" "legal asks for a master"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$FULL"
assert_eq "$(jq -r .renditions.master.sha256 <<<"$BODY")" "$(sha256sum "$T/legal.mkv" | cut -d' ' -f1)" \
  "the master legal got"
content 01a00000-0000-7000-8000-000000000000 "$ADMIN" master
assert_eq 404 "$ST" "the master of an item that does not exist"
assert_eq not_found "$(jq -r .error <<<"$BODY")" "error for an item that does not exist"

# The CLI: a usage error, and refusals that leave nothing behind.
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN"
rc=0
"$CUSTOS" get "$FULL" --rendition bogus -o "$T/x" >"$T/out" 2>&1 || rc=$?
assert_eq 2 "$rc" "custos get --rendition bogus ($(cat "$T/out"))"
[ ! -e "$T/x" ] || fail "custos get --rendition bogus wrote a file"
rc=0
"$CUSTOS" get "$CUT" --rendition master -o "$T/x" >"$T/out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "custos get of a failed master succeeded"
assert_match 'moov' "$(cat "$T/out")" "custos get says why the master failed"
[ ! -e "$T/x" ] && [ ! -e "$T/x.custos-part" ] || fail "custos get of a failed master left a file"

# Not made yet: a long clip behind one worker, asked for at once.
t_stop_server
t_start_server --workers 1 --media-threads 1
export CUSTOS_SERVER="$URL"
LONG=$(t_push "$T/long.ts" cam-1205)
content "$LONG" "$ADMIN" master
assert_eq 404 "$ST" "a master not made yet"
assert_eq rendition_not_ready "$(jq -r .error <<<"$BODY")" "error of a master not made yet ($BODY)"
assert_match 'queued|running' "$(jq -r .detail <<<"$BODY")" "detail of a master not made yet"
rc=0
"$CUSTOS" get "$LONG" --rendition master -o "$T/x" >"$T/out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "custos get of a master not made yet succeeded"
[ ! -e "$T/x" ] || fail "custos get of a master not made yet wrote a file"
t_stop_server
