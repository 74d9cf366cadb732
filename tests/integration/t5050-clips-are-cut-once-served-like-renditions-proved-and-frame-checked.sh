#!/usr/bin/env bash
# t5050: GET /v1/evidence/{id}/clip cuts a copy-mode clip from the keyframe
# at or before start (MP4, moov first) or an exact one (re-encoded, frame
# accurate); it is stored as a rendition, so asking again (even eight times
# at once) gives the same bytes and one "rendition" event; a copy clip's
# frames are then checked against the original's frame hashes (clip_checked
# event); custos clip proves what it saves; bad ranges and modes are 400
# with a reason; a reviewer outside the case gets 403; every clip served is
# an accessed event.
. "$(dirname "$0")/lib.sh"
command -v ffmpeg >/dev/null || exit 77
t_start_server
ffmpeg -loglevel error -f lavfi -i testsrc2=s=320x240:r=25:d=12 -f lavfi -i sine=f=440:d=12 \
  -c:v libx264 -preset ultrafast -g 50 -keyint_min 50 -sc_threshold 0 -c:a aac -shortest "$T/rec.mp4"
E=$(t_push "$T/rec.mp4" cam-50)
t_rend_settle "$E"
A=(-H "$(auth "$ADMIN")")

# Copy: starts on the keyframe at or before 5.3 s (keyframes every 2 s).
call -o "$T/c1.mp4" "${A[@]}" "$URL/v1/evidence/$E/clip?start=5.3&end=00:00:08.5"
assert_eq 200 "$ST" "copy clip: $(head -c 300 "$T/c1.mp4")"
assert_eq video/mp4 "$(hdr Content-Type)" "content type"
KIND=$(hdr Custos-Rendition)
assert_eq "clip:copy:5300:8500" "$KIND" "the rendition is named"
SHA=$(sha256sum "$T/c1.mp4" | cut -c1-64)
assert_eq "\"$SHA\"" "$(hdr ETag)" "ETag is the clip's hash"
python3 - "$T/c1.mp4" <<'PY' || fail "the clip's moov is not before its mdat"
import sys
d = open(sys.argv[1], 'rb').read()
i, boxes = 0, []
while i + 8 <= len(d):
    n = int.from_bytes(d[i:i+4], 'big'); boxes.append(d[i+4:i+8]); i += n if n else len(d)
assert boxes.index(b'moov') < boxes.index(b'mdat'), boxes
PY
frames=$(ffprobe -v error -select_streams v -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$T/c1.mp4")
assert_eq 113 "$frames" "4.0 s up to 8.5 s at 25 fps (from the keyframe at 4 s)"
call "${A[@]}" "$URL/v1/evidence/$E"
R=$(jq -c --arg k "$KIND" '.renditions[$k]' <<<"$BODY")
assert_eq done "$(jq -r .state <<<"$R")" "the clip is a rendition"
assert_eq "$SHA" "$(jq -r .sha256 <<<"$R")" "its record holds its hash"
assert_eq "$(sha256sum "$T/rec.mp4" | cut -c1-64)" "$(jq -r .source_sha256 <<<"$R")" "source hash"
assert_eq 4 "$(jq -r .report.actual_start_s <<<"$R")" "actual start"
assert_eq packets "$(jq -r .report.check.method <<<"$R")" "copy clips are checked packet by packet"
assert_eq true "$(jq -r .report.check.identical <<<"$R")" "identical packets"
[ -n "$(jq -r .libavcodec <<<"$R")" ] || fail "tool versions recorded"

# The same request again, eight times at once: the same bytes, no new clip.
pids=()
for i in 1 2 3 4 5 6 7 8; do
  curl -sS -o "$T/again$i" "${A[@]}" "$URL/v1/evidence/$E/clip?start=5.300&end=8.5" &
  pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4 5 6 7 8; do cmp -s "$T/c1.mp4" "$T/again$i" || fail "request $i got other bytes"; done
# Eight new ones at once: made once.
pids=()
for i in 1 2 3 4 5 6 7 8; do
  curl -sS -o "$T/new$i" "${A[@]}" "$URL/v1/evidence/$E/clip?start=1&end=3" &
  pids+=($!)
done
wait "${pids[@]}"
for i in 2 3 4 5 6 7 8; do cmp -s "$T/new1" "$T/new$i" || fail "concurrent request $i got other bytes"; done

# Exact: re-encoded, starts at 5.3 s, nothing claimed.
call -o "$T/x.mp4" "${A[@]}" "$URL/v1/evidence/$E/clip?start=5.3&end=6.5&mode=exact"
assert_eq 200 "$ST" "exact clip"
frames=$(ffprobe -v error -select_streams v -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$T/x.mp4")
assert_eq 30 "$frames" "1.2 s at 25 fps"
call "${A[@]}" "$URL/v1/evidence/$E"
assert_eq none "$(jq -r '.renditions["clip:exact:5300:6500"].report.check.method' <<<"$BODY")" "an exact clip claims no frame"

# The frame check of the copy clips.
for i in $(seq 1 150); do
  call "${A[@]}" "$URL/v1/evidence/$E"
  st=$(jq -r --arg k "$KIND" '.renditions[$k].frame_check.state' <<<"$BODY")
  [ "$st" = passed ] && break
  [ "$st" = failed ] && fail "frame check failed: $BODY"
  sleep 0.2
done
assert_eq passed "$st" "the copy clip's frames match the original's frame hashes"
assert_eq 100 "$(jq -r --arg k "$KIND" '.renditions[$k].frame_check.first_original_frame' <<<"$BODY")" "it starts at the original's frame 100"
assert_eq 113 "$(jq -r --arg k "$KIND" '.renditions[$k].frame_check.frames_checked' <<<"$BODY")" "every frame checked"

# Bad requests.
for q in "start=5&end=4" "start=5" "end=3" "start=abc&end=3" "start=1&end=2&mode=fast" "start=100&end=110" \
  "start=1:75&end=2:00"; do
  call "${A[@]}" "$URL/v1/evidence/$E/clip?$q"
  assert_eq 400 "$ST" "clip?$q"
  [ -n "$(jq -r .detail <<<"$BODY")" ] || fail "no reason for clip?$q"
done
assert_match 'lasts 12' "$(curl -sS "${A[@]}" "$URL/v1/evidence/$E/clip?start=100&end=110" | jq -r .detail)" "the duration is named"
printf 'not media at all' >"$T/t.bin"
ET=$(t_put "$ADMIN" "$T/t.bin" cam-50)
call "${A[@]}" "$URL/v1/evidence/$ET/clip?start=0&end=1"
assert_eq 400 "$ST" "a clip of something that is not media"

# A reviewer outside the case; then inside it.
RITA=$(t_token reviewer --user rita)
call -o /dev/null -H "$(auth "$RITA")" "$URL/v1/evidence/$E/clip?start=5.3&end=8.5"
assert_eq 403 "$ST" "rita without the case"
C=$(CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" case create "Clip case")
CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" case link "$C" "$E" >/dev/null
CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" case assign "$C" rita >/dev/null
# custos clip, as rita: proved, saved, the same bytes as before.
out=$(CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$RITA" "$CUSTOS" clip "$E" --start 00:00:05.3 --end 8.5 -o "$T/rita.mp4" 2>"$T/err") ||
  fail "custos clip: $(cat "$T/err")"
cmp -s "$T/c1.mp4" "$T/rita.mp4" || fail "custos clip saved other bytes"
assert_match "$KIND $SHA" "$out" "custos clip prints the kind and hash"
assert_match 'proved by ledger entry' "$(cat "$T/err")" "custos clip proves the clip"
rc=0
CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$RITA" "$CUSTOS" clip "$E" --start 9 --end 5 -o "$T/bad.mp4" 2>"$T/err" || rc=$?
assert_eq 2 "$rc" "custos clip with end before start"
[ ! -e "$T/bad.mp4" ] && [ ! -e "$T/bad.mp4.custos-part" ] || fail "a refused clip left a file"

# The ledger: one rendition event per clip, an accessed event per answer, the check.
call "${A[@]}" "$URL/v1/evidence/$E/events"
assert_eq 1 "$(jq --arg k "$KIND" '[.events[].event | select(.type == "rendition" and .kind == $k)] | length' <<<"$BODY")" "one rendition event for the clip"
assert_eq 1 "$(jq '[.events[].event | select(.type == "rendition" and .kind == "clip:copy:1000:3000")] | length' <<<"$BODY")" "eight requests at once made one clip"
assert_eq 10 "$(jq --arg k "$KIND" '[.events[].event | select(.type == "accessed" and .rendition == $k)] | length' <<<"$BODY")" "ten answers of the clip, ten accessed events"
assert_eq rita "$(jq -r --arg k "$KIND" '[.events[].event | select(.type == "accessed" and .rendition == $k)][-1].actor.user' <<<"$BODY")" "rita's access"
assert_eq passed "$(jq -r --arg k "$KIND" '[.events[].event | select(.type == "clip_checked" and .kind == $k)][0].result' <<<"$BODY")" "clip_checked event"
echo ok
