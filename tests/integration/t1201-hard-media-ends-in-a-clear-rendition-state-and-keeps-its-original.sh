#!/usr/bin/env bash
# t1201: hard media through the server; each item's renditions end in a
# clear state, and every original is still served byte-identical:
#  - an MP4 whose moov was never written (cut at 60%), pushed after a
#    complete MP4 of the same device: probed unparseable and damaged, the
#    master failed at once (one attempt: a verdict, not retried) with an
#    error that says "moov" and names the complete sibling's evidence id;
#  - an empty file and random bytes: every rendition not_applicable;
#  - a still JPEG: its master is the original itself, no access copy, a poster;
#  - a PCM WAV: master, an audio/mp4 access copy, no poster;
#  - MJPEG + PCM in AVI: the master copies the mjpeg stream;
#  - MPEG-TS (mpeg2video + mp2) with a timestamp discontinuity: the master's
#    report lists the timestamp corrections and the video went to FFV1;
#  - H.264 MPEG-TS with garbage over its middle (where libavformat flags a
#    corrupt packet): master and frame hashes done, the frame hashes' report
#    counts the damage and says where;
#  - variable frame rate H.264: master done and checked identical.
. "$(dirname "$0")/lib.sh"

for t in ffmpeg ffprobe python3; do
  command -v "$t" >/dev/null || { echo "$t not installed: skipped"; exit 77; }
done
mk() { ffmpeg -hide_banner -loglevel error -y "$@" || fail "ffmpeg could not make a fixture: $*"; }
SRC=(-f lavfi -i "testsrc=size=320x240:rate=25" -f lavfi -i "sine=frequency=440")
F=$T/fx
mkdir -p "$F"

# The complete MP4 and the one whose moov never came (no faststart: moov last).
mk "${SRC[@]}" -t 3 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$F/full.mp4"
n=$(stat -c %s "$F/full.mp4")
head -c $((n * 60 / 100)) "$F/full.mp4" >"$F/cut.mp4"
at=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().find(b"moov"))' "$F/full.mp4")
[ "$at" -gt $((n * 60 / 100)) ] || fail "fixture: the moov box ($at) is not in the last 40% of the complete MP4"
: >"$F/empty.bin"
python3 -c 'import random, sys; random.seed(1201); sys.stdout.buffer.write(random.randbytes(50000))' >"$F/random.bin"
mk -f lavfi -i "testsrc=size=320x240:rate=1" -frames:v 1 "$F/still.jpg"
mk -f lavfi -i "sine=frequency=440:duration=1" -c:a pcm_s16le "$F/sound.wav"
mk "${SRC[@]}" -t 1 -c:v mjpeg -c:a pcm_s16le -shortest "$F/mjpeg.avi"
# Two MPEG-TS files end to end, the second starting 1000 s later.
mk "${SRC[@]}" -t 1 -c:v mpeg2video -c:a mp2 -shortest -f mpegts "$F/ts1.ts"
mk "${SRC[@]}" -t 1 -c:v mpeg2video -c:a mp2 -shortest -output_ts_offset 1000 -f mpegts "$F/ts2.ts"
cat "$F/ts1.ts" "$F/ts2.ts" >"$F/jump.ts"
# H.264 in MPEG-TS with ~20 KB of (reproducible) garbage over its middle.
mk "${SRC[@]}" -t 4 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 25 -c:a aac -shortest -f mpegts "$F/garbled.ts"
python3 - "$F/garbled.ts" <<'PY'
import os, random, sys
random.seed(12011)
p = sys.argv[1]
n = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(n // 2 - 10000)
    f.write(random.randbytes(20000))
PY
# libavformat itself sees the damage (this is what the server must report).
ffmpeg -v warning -i "$F/garbled.ts" -f null - 2>&1 | grep -qi corrupt ||
  fail "fixture: ffmpeg finds nothing corrupt in the garbled TS"
# Variable frame rate: 30 fps for 20 frames, then 10 fps.
mk -f lavfi -i "testsrc=size=320x240:rate=30" -t 2 \
  -vf "setpts='if(lt(N,20),N/30/TB,(20/30+(N-20)/10)/TB)'" -fps_mode vfr \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p "$F/vfr.mp4"
steps=$(ffprobe -v error -select_streams v -show_entries packet=duration_time -of csv=p=0 "$F/vfr.mp4" |
  sort -u | grep -c .)
[ "$steps" -ge 2 ] || fail "fixture: vfr.mp4 has a constant frame duration"

t_start_server
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN"
FULL=$(t_push "$F/full.mp4" cam-1201)
t_rend_settle "$FULL"
assert_eq ok "$(jq -r .media.status <<<"$BODY")" "the complete MP4 is probed ok"
declare -A ID
for f in cut.mp4 empty.bin random.bin still.jpg sound.wav mjpeg.avi jump.ts garbled.ts vfr.mp4; do
  ID[$f]=$(t_push "$F/$f" cam-1201)
done
declare -A R
for f in "${!ID[@]}"; do
  t_rend_settle "${ID[$f]}"
  R[$f]=$BODY
done
st() { jq -r ".renditions.$2.state" <<<"${R[$1]}"; }
why() { jq -c ".renditions.$2 | {state, error, reason}" <<<"${R[$1]}"; }

# ---- the MP4 without its moov ----------------------------------------------------
r=${R[cut.mp4]}
assert_eq unparseable "$(jq -r .media.status <<<"$r")" "media.status of the moov-less MP4"
assert_eq true "$(jq -r .media.damaged <<<"$r")" "media.damaged of the moov-less MP4"
assert_eq failed "$(st cut.mp4 master)" "the moov-less MP4's master ($(why cut.mp4 master))"
err=$(jq -r .renditions.master.error <<<"$r")
assert_match 'moov' "$err" "the failed master's error says what is missing"
assert_match "$FULL" "$err" "the failed master's error names the complete sibling recording"
jobs=$("$CUSTOS" jobs --json --state failed --kind master)
j=$(jq -c --arg e "${ID[cut.mp4]}" '[.[] | select(.evidence == $e)]' <<<"$jobs")
assert_eq 1 "$(jq length <<<"$j")" "failed master jobs of the moov-less MP4 ($jobs)"
assert_eq failed "$(jq -r '.[0].state' <<<"$j")" "the moov-less MP4's master job state"
assert_eq 1 "$(jq -r '.[0].attempts' <<<"$j")" "the moov-less MP4's master job attempts (a verdict is final)"
assert_match 'moov' "$(jq -r '.[0].error' <<<"$j")" "the failed master job's error"
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?kind=master&state=queued"
assert_eq 0 "$(jq --arg e "${ID[cut.mp4]}" '[.jobs[] | select(.evidence == $e)] | length' <<<"$BODY")" \
  "queued master jobs (retries) of the moov-less MP4"

# ---- not media at all --------------------------------------------------------------
for f in empty.bin random.bin; do
  for k in master access framehash poster; do
    assert_eq not_applicable "$(st "$f" "$k")" "the $k of $f ($(why "$f" "$k"))"
    [ -n "$(jq -r ".renditions.$k.reason // empty" <<<"${R[$f]}")" ] || fail "the $k of $f says no reason"
  done
done

# ---- a still image -------------------------------------------------------------------
assert_eq done "$(st still.jpg master)" "the still JPEG's master ($(why still.jpg master))"
assert_eq "$(sha256sum "$F/still.jpg" | cut -d' ' -f1)" "$(jq -r .renditions.master.sha256 <<<"${R[still.jpg]}")" \
  "the still JPEG's master is the original"
assert_eq not_applicable "$(st still.jpg access)" "the still JPEG's access copy ($(why still.jpg access))"
assert_eq done "$(st still.jpg poster)" "the still JPEG's poster ($(why still.jpg poster))"

# ---- sound only ------------------------------------------------------------------------
assert_eq done "$(st sound.wav master)" "the WAV's master ($(why sound.wav master))"
assert_eq done "$(st sound.wav access)" "the WAV's access copy ($(why sound.wav access))"
assert_eq not_applicable "$(st sound.wav poster)" "the WAV's poster ($(why sound.wav poster))"
ST=$(curl -sS -D "$T/h" -o "$T/wav.access" -w '%{http_code}' -H "$(auth "$ADMIN")" \
  "$URL/v1/evidence/${ID[sound.wav]}/content?rendition=access")
assert_eq 200 "$ST" "GET the WAV's access copy"
assert_eq audio/mp4 "$(hdr Content-Type)" "Content-Type of the WAV's access copy"
assert_eq aac "$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$T/wav.access")" \
  "the WAV's access copy is AAC alone"

# ---- MJPEG + PCM in AVI ----------------------------------------------------------------
assert_eq done "$(st mjpeg.avi master)" "the AVI's master ($(why mjpeg.avi master))"
assert_eq copy "$(jq -r '.renditions.master.report.streams[] | select(.type == "video") | select(.codec == "mjpeg") | .action' \
  <<<"${R[mjpeg.avi]}")" "the AVI master's action for the mjpeg stream"

# ---- MPEG-TS with a timestamp jump ------------------------------------------------------
r=${R[jump.ts]}
assert_eq done "$(st jump.ts master)" "the discontinuous TS's master ($(why jump.ts master))"
[ "$(jq '.renditions.master.report.timestamp_corrections | length' <<<"$r")" -ge 1 ] ||
  fail "no timestamp_corrections in the discontinuous TS's master report: $(jq -c .renditions.master.report <<<"$r")"
assert_eq ffv1 "$(jq -r '.renditions.master.report.streams[] | select(.type == "video") | .action' <<<"$r")" \
  "the discontinuous TS master's action for the mpeg2video stream"
assert_eq true "$(jq '.renditions.master.params.ffv1 | type == "object"' <<<"$r")" \
  "the FFV1 settings in the discontinuous TS master's params"

# ---- variable frame rate ---------------------------------------------------------------------
assert_eq done "$(st vfr.mp4 master)" "the VFR clip's master ($(why vfr.mp4 master))"
assert_eq identical "$(jq -r .renditions.master.report.check.result <<<"${R[vfr.mp4]}")" \
  "the VFR master's lossless check"

# ---- every original, byte for byte ------------------------------------------------------------
for f in full.mp4 "${!ID[@]}"; do
  id=${ID[$f]:-$FULL}
  ST=$(curl -sS -o "$T/orig" -w '%{http_code}' -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id/content?rendition=original")
  assert_eq 200 "$ST" "GET the original of $f"
  cmp -s "$T/orig" "$F/$f" || fail "the original of $f is not served byte-identical"
done

# ---- H.264 TS with garbage in the middle --------------------------------------------------
r=${R[garbled.ts]}
assert_eq done "$(st garbled.ts master)" "the garbled TS's master ($(why garbled.ts master))"
assert_eq done "$(st garbled.ts framehash)" "the garbled TS's frame hashes ($(why garbled.ts framehash))"
de=$(jq -c .renditions.framehash.report.decode_errors <<<"$r")
[ "$(jq '.packets_failed + .frames_damaged + .packets_corrupt + .read_errors' <<<"$de")" -ge 1 ] ||
  fail "the garbled TS's frame hashes report no decode errors, though ffmpeg flags a corrupt packet ($(ffmpeg -v warning -i "$F/garbled.ts" -f null - 2>&1 | grep -i corrupt | head -n 1)): $de"
[ "$(jq '.where | length' <<<"$de")" -ge 1 ] || fail "the garbled TS's decode errors say nowhere: $de"
jq -e '.where | all(has("stream") and has("pts_s") and has("what"))' <<<"$de" >/dev/null ||
  fail "a decode error place lacks stream, pts_s or what: $de"

t_stop_server
