#!/usr/bin/env bash
# t1207: a still image's renditions do not depend on which job runs first.
# With many workers, an item's probe and its rendition jobs run side by side;
# every one of 48 distinct JPEGs must still end with its master being the
# original itself, no access copy ("not_applicable"), and a poster.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
mkdir -p "$T/stills"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc=size=1280x720:rate=25" -frames:v 48 \
  "$T/stills/s%02d.jpg" || fail "ffmpeg could not make the stills"
assert_eq 48 "$(sha256sum "$T"/stills/*.jpg | cut -d' ' -f1 | sort -u | wc -l)" "distinct stills"

t_start_server --workers 8
out=$(CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" push --state-dir "$T/push-state" --device cam-1207 "$T/stills")
assert_eq 48 "$(grep -c . <<<"$out")" "stills pushed"
bad=""
while read -r id sha path; do
  t_rend_settle "$id"
  got=$(jq -r --arg sha "$sha" '[.renditions.master.state, (.renditions.master.sha256 == $sha),
    .renditions.access.state, .renditions.poster.state] | join(" ")' <<<"$BODY")
  [ "$got" = "done true not_applicable done" ] ||
    bad="$bad
  $(basename "$path") ($id): master, master is the original, access, poster = $got"
done <<<"$out"
[ -z "$bad" ] || fail "stills whose renditions depend on the job order:$bad"
t_stop_server
