#!/usr/bin/env bash
# bench/transcode/priority.sh: do uploads keep priority over transcodes?
#
# One 2 GiB tus PATCH (curl) into a real server, measured twice in each rep:
#   idle  the server has nothing else to do
#   busy  the server is making the archival copies of a 60 s 1080p recording
#         (frame hashes, master, access copy, poster: both job workers busy,
#         each job using both cores) for the whole upload
# and the ratio busy / idle. Media jobs run at nice 10, so the upload's
# threads should barely notice them. Runs alternate (idle, busy, busy, idle,
# ...) on this shared 2-core VM. Not a test: never run by ctest or CI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

REPS=3 SIZE=2G
while [ $# -gt 0 ]; do
  case $1 in
  --reps) REPS=$2; shift 2 ;;
  --size) SIZE=$2; shift 2 ;;
  -h | --help)
    echo "usage: bench/transcode/priority.sh [--reps N] [--size SIZE]  (defaults 3, 2G)"
    exit 0 ;;
  *) echo "usage: bench/transcode/priority.sh [--reps N] [--size SIZE]" >&2; exit 2 ;;
  esac
done
SIZE=$(b_size "$SIZE")
T_RATIO=0.90 # busy upload >= 0.9 x idle upload

CUSTOS=$(b_custos_bin "$ROOT")
OUT=$ROOT/bench/out/transcode
mkdir -p "$OUT/priority"
CLIP=$OUT/in-h264-aac-1080p30-60s-n8.mp4
if [ ! -f "$CLIP" ]; then
  b_log "making the 60 s 1080p30 recording (bench/transcode/run.sh makes the same one)"
  ffmpeg -hide_banner -nostdin -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 -vf "noise=alls=8:allf=t" \
    -c:v libx264 -preset veryfast -crf 23 -c:a aac -b:a 128k -shortest "$CLIP"
fi
BIG=$OUT/priority/upload-$SIZE.bin
if [ ! -f "$BIG" ]; then
  b_log "making a $((SIZE >> 20)) MiB upload of random bytes"
  head -c "$SIZE" /dev/urandom >"$BIG"
fi
T=$(mktemp -d "$OUT/priority/run.XXXXXX")
SRV=""
cleanup() {
  [ -n "$SRV" ] && kill -9 "$SRV" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

start() {
  rm -rf "$T/home" "$T/port"
  "$CUSTOS" serve --home "$T/home" --listen 127.0.0.1:0 --port-file "$T/port" --scrub-rate 0 \
    >"$T/server.log" 2>&1 &
  SRV=$!
  b_wait_file "$T/port" "$SRV" 20 || b_die "the server did not start: $(tail -n 3 "$T/server.log")"
  URL="http://127.0.0.1:$(cat "$T/port")"
  AUTH="Authorization: Bearer $(cat "$T/home/admin.token")"
}
stop() {
  kill -TERM "$SRV"
  wait "$SRV" 2>/dev/null || true
  SRV=""
}
b64() { printf '%s' "$1" | base64 -w0; }
upload() { # FILE -> seconds of the PATCH
  local size loc
  size=$(stat -c %s "$1")
  loc=$(curl -s -D - -o /dev/null -X POST -H "$AUTH" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Length: $size" -H "Upload-Metadata: device_id $(b64 bench),filename $(b64 "$(basename "$1")")" \
    "$URL/v1/uploads" | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
  [ -n "$loc" ] || b_die "no upload Location"
  case $loc in http*) ;; *) loc="$URL$loc" ;; esac
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X PATCH -H "$AUTH" -H 'Tus-Resumable: 1.0.0' \
    -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' -T "$1" "$loc" |
    { read -r code secs; [ "$code" = 204 ] || b_die "PATCH answered $code"; echo "$secs"; }
}
running_media() { # the number of media jobs running now
  curl -s -H "$AUTH" "$URL/v1/jobs?state=running" |
    jq '[.jobs[] | select(.kind == "framehash" or .kind == "master" or .kind == "access" or .kind == "poster")] | length'
}

idle_run() {
  start
  local s
  s=$(upload "$BIG")
  stop
  echo "$s" >>"$T/idle"
  b_log "idle: $(b_mb "$(b_div "$SIZE" "$s" 0)") MB/s"
}
busy_run() {
  start
  upload "$CLIP" >/dev/null
  for _ in $(seq 1 200); do [ "$(running_media)" -ge 2 ] && break; sleep 0.05; done
  local before after s
  before=$(running_media)
  s=$(upload "$BIG")
  after=$(running_media)
  stop
  [ "$before" -ge 1 ] && [ "$after" -ge 1 ] || b_die "the media jobs were not running through the upload ($before before, $after after): use a longer recording"
  echo "$s" >>"$T/busy"
  b_log "busy ($before media jobs running at the start, $after at the end): $(b_mb "$(b_div "$SIZE" "$s" 0)") MB/s"
}

for ((rep = 1; rep <= REPS; rep++)); do
  if ((rep % 2)); then idle_run; busy_run; else busy_run; idle_run; fi
done
idle=$(b_median <"$T/idle") busy=$(b_median <"$T/busy")
ri=$(b_div "$SIZE" "$idle" 0) rb=$(b_div "$SIZE" "$busy" 0)
ratio=$(b_div "$rb" "$ri" 2)
met=$(awk -v r="$ratio" -v t="$T_RATIO" 'BEGIN {print (r >= t) ? "met" : "MISSED"}')
{
  echo "bench/transcode/priority.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(b_tree_version "$ROOT"), $REPS reps (medians)"
  echo "one $((SIZE >> 20)) MiB tus PATCH; busy = while the server makes the archival copies of a 60 s 1080p recording"
  echo "| upload | MB/s |"
  echo "| --- | ---: |"
  echo "| idle server | $(b_mb "$ri") |"
  echo "| server making archival copies | $(b_mb "$rb") |"
  echo "| ratio busy / idle | $ratio (target ≥ $T_RATIO: $met) |"
} | tee "$OUT/priority/summary.txt"
