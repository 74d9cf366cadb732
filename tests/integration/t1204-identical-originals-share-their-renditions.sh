#!/usr/bin/env bash
# t1204: the same bytes pushed twice, by two devices, are two items; once the
# first item's renditions are made, the second item's are the same objects:
# each of its records has the first's sha256 and "reused_from" naming the
# first item, its "rendition" events say so too, and both items serve the
# same bytes for each rendition.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc=size=320x240:rate=25" -f lavfi -i "sine=frequency=440" \
  -t 2 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$T/a.mp4" || fail "ffmpeg could not make the clip"
cp "$T/a.mp4" "$T/b.mp4"
SHA=$(sha256sum "$T/a.mp4" | cut -d' ' -f1)

t_start_server
A=$(t_push "$T/a.mp4" cam-1204a)
t_rend_settle "$A"
RA=$BODY
for k in master access framehash poster; do
  assert_eq done "$(jq -r ".renditions.$k.state" <<<"$RA")" "the first item's $k"
  assert_eq null "$(jq -r ".renditions.$k.reused_from" <<<"$RA")" "the first item's $k is its own"
done

B=$(t_push "$T/b.mp4" cam-1204b)
[ "$A" != "$B" ] || fail "the second push was not a second item"
t_rend_settle "$B"
RB=$BODY
assert_eq "$SHA" "$(jq -r .sha256 <<<"$RB")" "the second item's original hash"
assert_eq cam-1204b "$(jq -r .device_id <<<"$RB")" "the second item's device"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$B/events"
assert_eq 200 "$ST" "GET the second item's events"
EVB=$BODY
for k in master access framehash poster; do
  sha=$(jq -r ".renditions.$k.sha256" <<<"$RA")
  assert_eq done "$(jq -r ".renditions.$k.state" <<<"$RB")" "the second item's $k"
  assert_eq "$sha" "$(jq -r ".renditions.$k.sha256" <<<"$RB")" "the second item's $k sha256"
  assert_eq "$A" "$(jq -r ".renditions.$k.reused_from" <<<"$RB")" "the second item's $k reused_from"
  evs=$(jq -c --arg k "$k" '[.events[].event | select(.type == "rendition" and .kind == $k)]' <<<"$EVB")
  assert_eq 1 "$(jq length <<<"$evs")" "the second item's $k rendition events"
  assert_eq "$sha" "$(jq -r '.[0].sha256' <<<"$evs")" "the second item's $k event sha256"
  assert_eq "$A" "$(jq -r '.[0].reused_from' <<<"$evs")" "the second item's $k event reused_from"
  assert_eq "$B" "$(jq -r '.[0].evidence' <<<"$evs")" "the second item's $k event evidence"
  for id in "$A" "$B"; do
    st=$(curl -sS -o "$T/$k.$id" -w '%{http_code}' -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id/content?rendition=$k")
    assert_eq 200 "$st" "GET $id content?rendition=$k"
    assert_eq "$sha" "$(sha256sum "$T/$k.$id" | cut -d' ' -f1)" "the bytes of $id's $k"
  done
done
# Each shared rendition is a stored object, named by its hash.
for k in master access framehash poster; do
  sha=$(jq -r ".renditions.$k.sha256" <<<"$RA")
  [ -f "$HOME_DIR/objects/sha256/${sha:0:2}/${sha:2:2}/$sha" ] || fail "no object for the $k ($sha)"
done
shown=$(CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" show "$B")
assert_match 'shared with an identical original' "$shown" "custos show says the renditions are shared"
t_stop_server
t_verify
assert_eq 0 "$VRC" "custos verify with shared renditions ($(cat "$T/v.txt"))"
