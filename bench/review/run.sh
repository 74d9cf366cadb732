#!/usr/bin/env bash
# bench/review: what a reviewer waits for, in one run (issue 5):
#
#   1  index   1,000,000 synthetic evidence records loaded through the real
#              index code (review_bench.c, linked against custos_indexer);
#              a device time-range query returning 100 items and a case
#              listing of 1,000 items, p50 and p99 (targets: p99 < 2 ms and
#              < 10 ms); then the same two through the server (curl, one
#              keep-alive connection), for context
#   2  clip    a copy-mode 30 s clip from the middle of a 60-minute 1080p30
#              H.264 + AAC recording: Custos (GET /v1/evidence/{id}/clip, or
#              custos-media clip while the endpoint is not there) against
#              `ffmpeg -ss -to -i -c copy -movflags +faststart` as a process
#              (target: < 300 ms)
#   3  content GET /v1/evidence/{id}/content of that recording against nginx
#              serving the same file (the same inode) on loopback, both with
#              curl: whole-file throughput (target: >= 0.8 x nginx) and
#              64 KiB range requests like a video player's, one connection
#              and eight, in requests per second (each Custos answer appends
#              an "accessed" event to the ledger: a synced write)
#
# The server's home holds the 1,000,000-record index of part 1, so parts 2
# and 3 run against an archive of that size. The recording is uploaded once
# (tus, curl) into a server started with --media-time-limit 1, so that its
# renditions (some 40 minutes of CPU for an hour of 1080p on this machine)
# give up at once instead of running under the measurements; the server is
# then restarted with the default limits for the measurements. The scrubber
# is off (--scrub-rate 0): its background walk would find the synthetic
# records' objects missing.
#
# The recording is generated once (ffmpeg: 120 s of testsrc2 with temporal
# noise, libx264 ultrafast at ~7 Mbit/s, a keyframe every 2 s, looped to
# 60 minutes with -c copy, and 60 minutes of AAC) into bench/out/review/
# (git-ignored) and reused. Runs are interleaved, Custos and the peer taking
# turns to go first; medians are printed.
#
# This is not a test: it is never run by ctest or CI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

usage() {
  cat <<'EOF'
usage: bench/review/run.sh [options] [-- review_bench options]

  --records N       evidence records in the index (default 1000000)
  --reps N          timed runs of each clip and whole-file fetch (default 5; medians)
  --ranges N        64 KiB range requests per pass (default 1000)
  --conc N          connections for the parallel range pass (default 8)
  --skip LIST       comma-separated parts to leave out: index,http,clip,content
                    (skipping index loads a 1,000-record index for the server)
  --quick           a smoke run: 100,000 records, 3 reps, 200 ranges
  --bitrate RATE    video bitrate of the generated recording (default 7M; a
                    different rate is a different cached file)
  --results FILE    also write the summary to FILE
                    (default bench/out/review-summary.txt; bench/out/ is git-ignored)
  --keep            keep the scratch directory (server home, logs)
  --strict          exit 3 when a target is missed
  -h, --help        this text

Anything after -- goes to review_bench (see `--help` there).
Environment:
  BENCH_TMP=DIR     scratch space: the server home with its index and the
                    stored recording (default $TMPDIR or /tmp); it must be
                    on the disk you mean to measure (not tmpfs)
  BUILD_DIR=DIR     the Release build (default ROOT/build-bench-review)
  CUSTOS=PATH       a custos binary to measure instead of BUILD_DIR's
EOF
}

# ---- targets (from the issue) ------------------------------------------------
T_DEVICE_MS=2    # device time-range query, 100 items: p99 below
T_CASE_MS=10     # case listing, 1,000 items: p99 below
T_CLIP_MS=300    # copy-mode 30 s clip: below
T_CONTENT=0.80   # /content whole-file throughput / nginx's: at least

RECORDS=1000000 REPS=5 RANGES=1000 CONC=8 SKIP="" BITRATE=7M RESULTS="" KEEP=0 STRICT=0 EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
  --records) RECORDS=$2; shift 2 ;;
  --reps) REPS=$2; shift 2 ;;
  --ranges) RANGES=$2; shift 2 ;;
  --conc) CONC=$2; shift 2 ;;
  --skip) SKIP=$2; shift 2 ;;
  --quick) RECORDS=100000 REPS=3 RANGES=200; shift ;;
  --bitrate) BITRATE=$2; shift 2 ;;
  --results) RESULTS=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  --strict) STRICT=1; shift ;;
  -h | --help) usage; exit 0 ;;
  --) shift; EXTRA=("$@"); break ;;
  *) usage >&2; exit 2 ;;
  esac
done
for v in "$RECORDS" "$REPS" "$RANGES" "$CONC"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || b_die "--records, --reps, --ranges and --conc take positive integers"
done
[[ $BITRATE =~ ^[1-9][0-9]*[kKM]?$ ]] || b_die "--bitrate takes a rate like 7M or 3000k"
skipped() { [[ ",$SKIP," == *",$1,"* ]]; }
OUT=$ROOT/bench/out/review
mkdir -p "$OUT"
[ -n "$RESULTS" ] || RESULTS=$ROOT/bench/out/review-summary.txt
STAMP=$(date -u +%Y%m%d-%H%M%S)

for tool in cmake make cc pkg-config curl ffmpeg ffprobe awk ss; do
  command -v "$tool" >/dev/null || b_die "$tool is needed"
done

# ---- build ------------------------------------------------------------------
# Like b_custos_bin, in a Release build of our own: the server, custos-media
# (tests/tools, so BUILD_TESTING stays on; no test is built or run) and the
# libraries review_bench links.
BUILD=${BUILD_DIR:-$ROOT/build-bench-review}
mkdir -p "$BUILD"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  b_log "configuring a Release build in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD/cmake.log" 2>&1 ||
    b_die "cmake failed; see $BUILD/cmake.log"
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt" || b_die "$BUILD is not a Release build"
# Always re-made: the tree changes under us.
b_log "building custos, custos-media and the index libraries in $BUILD"
make -C "$BUILD" -j"$(nproc)" custos custos-media custos_indexer custos_common >"$BUILD/make-review.log" 2>&1 ||
  b_die "build failed; see $BUILD/make-review.log"
if [ -n "${CUSTOS:-}" ]; then
  [ -x "$CUSTOS" ] || b_die "CUSTOS=$CUSTOS is not an executable"
  CBIN=$(realpath "$CUSTOS")
  BUILD_NOTE="$CBIN (given); review_bench and custos-media: Release in $BUILD, $(b_tree_version "$ROOT")"
else
  CBIN=$BUILD/cli/custos
  BUILD_NOTE="Release in $BUILD, source at $(b_tree_version "$ROOT")"
fi
CM=$BUILD/tests/tools/custos-media
BENCH=$BUILD/bench-review/review_bench
mkdir -p "$(dirname "$BENCH")"
PKGS="libcrypto jansson"
# -O2 like the Release libraries.
# shellcheck disable=SC2046,SC2086 # $PKGS and pkg-config output are lists of words
cc -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
  -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter -Werror \
  -I"$ROOT/common" -I"$ROOT/indexer" $(pkg-config --cflags $PKGS) \
  -o "$BENCH" "$HERE/review_bench.c" \
  "$BUILD/indexer/libcustos_indexer.a" "$BUILD/common/libcustos_common.a" \
  -lrocksdb $(pkg-config --libs $PKGS) -lpthread -ldl -lm ||
  b_die "cannot compile review_bench.c"

command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || b_apt_install nginx-light
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || b_die "nginx is not available"

# ---- scratch ----------------------------------------------------------------
TMPBASE=${BENCH_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$TMPBASE"
T=$(mktemp -d "$TMPBASE/custos-review.XXXXXX")
W=$T/work RES=$T/res
mkdir -p "$W" "$RES"
PIDS=()
pids_drop() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local rc=$?
  b_stop_and_show_logs "$rc" "$T"
  if [ "$KEEP" = 1 ]; then b_log "kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
FSTYPE=$(df --output=fstype "$T" | tail -n 1 | tr -d ' ')
[ "$FSTYPE" != tmpfs ] || b_die "$T is on tmpfs; set BENCH_TMP to a directory on the disk"

record() { printf '%s\n' "$2" >>"$RES/$1"; }
have() { [ -s "$RES/$1" ]; }
med() { b_median <"$RES/$1"; }
kvget() { awk -F= -v k="$2" '$1 == k {print $2; f = 1} END {if (!f) print "n/a"}' "$1"; }
header() { grep -i "^$1:" "$2" | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
b64() { printf '%s' "$1" | base64 -w0; }
# A sleep without a fork.
exec {SLEEPFD}<> <(:)
nap() { read -r -t "$1" -u "$SLEEPFD" _ || true; }
settle() { rm -f "$W"/out.* "$W"/clip.*; sync; nap 1; }

STARTED=$(b_now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
  b_log "warning: load average is $LOAD_START on $(nproc) cores before we start;" \
    "other work on this machine will show up in the figures"
fi
# Load average at each part's start, for the summary.
LOADS=()
note_load() { LOADS+=("$1 $(cut -d' ' -f1 /proc/loadavg)"); }

# ---- the recording (generated once) ------------------------------------------
REC=$OUT/rec-1080p30-3600s-$BITRATE.mp4
REC_NOTE=""
if ! skipped clip || ! skipped content; then
  if [ ! -s "$REC" ]; then
    # recording + stored copy + index + slack
    need=$((14 * 1024 * 1024 * 1024))
    if (($(b_free_bytes "$OUT") < need)) && [ "$BITRATE" = 7M ]; then
      BITRATE=3M REC=$OUT/rec-1080p30-3600s-$BITRATE.mp4
      REC_NOTE=" (3 Mbit/s, not 7: less than 14 GiB free)"
      b_log "little disk space: the recording is made at 3 Mbit/s"
    fi
  fi
  if [ ! -s "$REC" ]; then
    b_log "generating $(basename "$REC") once (about 2-3 minutes)"
    FF=(ffmpeg -hide_banner -nostdin -v error -y)
    "${FF[@]}" -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 120 -vf noise=alls=8:allf=t \
      -c:v libx264 -preset ultrafast -b:v "$BITRATE" -maxrate "$BITRATE" -bufsize "$BITRATE" \
      -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -an "$OUT/seg.tmp.mp4" ||
      b_die "cannot generate the 120 s segment"
    # 30 x 120 s of video, copied (timestamps continue across the loops),
    # and 60 minutes of AAC; the moov at the end, as a camera writes it.
    "${FF[@]}" -stream_loop 29 -i "$OUT/seg.tmp.mp4" \
      -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000" \
      -map 0:v -map 1:a -c:v copy -c:a aac -b:a 128k -ac 2 -t 3600 "$REC.tmp.mp4" ||
      b_die "cannot generate the recording"
    rm -f "$OUT/seg.tmp.mp4"
    mv "$REC.tmp.mp4" "$REC"
  fi
  REC_SIZE=$(stat -c %s "$REC")
  REC_DUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$REC")
  REC_DESC="$(basename "$REC"): ${REC_DUR%.*} s 1920x1080 30 fps testsrc2 + noise, H.264 (libx264 ultrafast, keyframe every 2 s) + AAC-LC 128k, $(awk -v b="$REC_SIZE" 'BEGIN {printf "%.2f GB", b/1e9}') ($(awk -v b="$REC_SIZE" -v s="$REC_DUR" 'BEGIN {printf "%.1f", b*8/s/1e6}') Mbit/s)$REC_NOTE"
  b_log "recording: $REC_DESC"
fi
need=$((${REC_SIZE:-0} + 6 * 1024 * 1024 * 1024))
(($(b_free_bytes "$T") > need)) || b_die "not enough free disk under $TMPBASE (need $(numfmt --to=iec $need))"

# ---- 1: the index -------------------------------------------------------------
C_HOME=$T/home
mkdir -p "$C_HOME"
BENCH_OUT=$T/index.txt KV=$T/index.kv QUERIES=$T/queries.txt
if skipped index; then
  b_log "index part skipped: a 1,000-record index for the server"
  "$BENCH" --dir "$C_HOME/index" --records 1000 --devices 2 --case-items 100 --queries 10 \
    --case-reps 2 --no-compact --kv "$KV" --queries-out "$QUERIES" >"$BENCH_OUT" 2>"$T/bench.log" ||
    b_die "review_bench failed"
else
  note_load index
  b_log "index: loading $RECORDS records and querying them (review_bench; a few minutes)"
  "$BENCH" --dir "$C_HOME/index" --records "$RECORDS" --kv "$KV" --queries-out "$QUERIES" \
    "${EXTRA[@]+"${EXTRA[@]}"}" 2> >(tee "$T/bench.log" >&2) | tee "$BENCH_OUT" ||
    b_die "review_bench failed"
fi

# ---- the server -----------------------------------------------------------------
C_PID="" C_URL="" C_TOK=""
custos_up() { # extra serve options...
  rm -f "$T/custos.port"
  "$CBIN" serve --home "$C_HOME" --listen 127.0.0.1:0 --port-file "$T/custos.port" \
    --scrub-rate 0 --log-level warn "$@" >>"$T/custos.log" 2>&1 &
  C_PID=$!
  PIDS+=("$C_PID")
  b_wait_file "$T/custos.port" "$C_PID" 60 || b_die "custos did not start (see log)"
  C_URL="http://127.0.0.1:$(cat "$T/custos.port")"
  C_TOK=$(cat "$C_HOME/admin.token")
}
custos_down() {
  kill -TERM "$C_PID"
  local rc=0
  wait "$C_PID" || rc=$?
  [ "$rc" = 0 ] || b_log "custos exited with status $rc"
  pids_drop "$C_PID"
  C_PID=""
}
AUTH=(-H "Authorization: Bearer PLACEHOLDER")
set_auth() { AUTH=(-H "Authorization: Bearer $C_TOK"); }
jobs_busy() { # queued + running jobs
  local n=0 s
  for s in queued running; do
    n=$((n + $(curl -sS "${AUTH[@]}" "$C_URL/v1/jobs?state=$s&limit=1000" | grep -o '"id"' | wc -l)))
  done
  echo "$n"
}
wait_jobs() { # SECONDS -> 0 when no job is queued or running
  local i
  for ((i = 0; i < $1; i++)); do
    [ "$(jobs_busy)" = 0 ] && return 0
    nap 1
  done
  return 1
}

EVID="" OBJ=""
if ! skipped clip || ! skipped content; then
  # Upload once, into a server whose media jobs give up at once.
  custos_up --media-time-limit 1
  set_auth
  b_log "uploading the recording (tus, one PATCH)"
  h=$W/create.h
  curl -sS -o /dev/null -D "$h" -X POST "${AUTH[@]}" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Length: $REC_SIZE" \
    -H "Upload-Metadata: device_id $(b64 bwc-0001),filename $(b64 "$(basename "$REC")"),recorded_at $(b64 2026-11-27T08:00:00Z)" \
    "$C_URL/v1/uploads"
  loc=$(header Location "$h")
  [ -n "$loc" ] || b_die "POST /v1/uploads gave no Location"
  out=$(curl -sS -o /dev/null -D "$W/patch.h" -w '%{http_code} %{time_total}' -X PATCH -T "$REC" \
    -H 'Expect:' "${AUTH[@]}" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' "$loc")
  read -r code secs <<<"$out"
  [ "$code" = 204 ] || b_die "PATCH answered $code"
  EVID=$(header Custos-Evidence-Id "$W/patch.h")
  SHA=$(header Custos-SHA256 "$W/patch.h")
  if [ -z "$EVID" ] || [ -z "$SHA" ]; then b_die "the upload was not committed"; fi
  UPLOAD_MBS=$(awk -v b="$REC_SIZE" -v s="$secs" 'BEGIN {printf "%.0f", b/s/1e6}')
  b_log "uploaded as $EVID in $secs s ($UPLOAD_MBS MB/s); waiting for its jobs to end"
  wait_jobs 180 || b_log "warning: jobs still queued or running after 180 s"
  OBJ=$C_HOME/objects/sha256/${SHA:0:2}/${SHA:2:2}/$SHA
  [ -f "$OBJ" ] || OBJ=$(find "$C_HOME/objects" -type f -name "$SHA" | head -n 1)
  [ -f "$OBJ" ] || b_die "cannot find the stored object of $SHA"
  custos_down
fi
# The measurements: default limits.
custos_up
set_auth

# ---- 1b: the index through the server -------------------------------------------
# One curl process, one keep-alive connection, a config block per request;
# time_total per request (connect and TLS play no part after the first).
curl_cfg_list() { # KIND -> a curl config on stdout
  local kind=$1 k dev from to cid n i
  case $kind in
  device)
    while read -r k dev from to; do
      [ "$k" = device ] || continue
      printf 'url = "%s/v1/evidence?device=%s&from=%s&to=%s&limit=100"\n' "$C_URL" "$dev" "$from" "$to"
      printf 'output = "/dev/null"\nsilent\nshow-error\nheader = "Authorization: Bearer %s"\n' "$C_TOK"
      printf 'write-out = "%%{http_code} %%{time_total} %%{size_download}\\n"\nnext\n'
    done <"$QUERIES"
    ;;
  case)
    read -r _ cid n < <(grep '^case ' "$QUERIES")
    for ((i = 0; i < 200; i++)); do
      printf 'url = "%s/v1/evidence?case=%s&limit=1000"\n' "$C_URL" "$cid"
      printf 'output = "/dev/null"\nsilent\nshow-error\nheader = "Authorization: Bearer %s"\n' "$C_TOK"
      printf 'write-out = "%%{http_code} %%{time_total} %%{size_download}\\n"\nnext\n'
    done
    ;;
  esac
}
# "code seconds bytes" lines -> RES/NAME.us (microseconds), checks the codes.
curl_lines() { # NAME FILE CODE
  local bad
  bad=$(awk -v c="$3" '$1 != c' "$2" | wc -l)
  [ "$bad" = 0 ] || b_die "$1: $bad answers were not $3 (first: $(awk -v c="$3" '$1 != c' "$2" | head -n 1))"
  awk '{printf "%.0f\n", $2 * 1e6}' "$2" >>"$RES/$1.us"
  awk '{s += $3} END {printf "%.0f\n", s / NR}' "$2" >"$RES/$1.bytes"
}
us_pct() { # NAME Q -> nearest-rank percentile of RES/NAME.us, in ms
  sort -n "$RES/$1.us" | awk -v q="$2" '{v[NR] = $1} END {r = int(q * NR); if (r < q * NR) r++; if (r < 1) r = 1; printf "%.2f", v[r] / 1000}'
}
if ! skipped index && ! skipped http; then
  note_load http
  b_log "index through the server: $(grep -c '^device ' "$QUERIES") device queries, 200 case listings"
  # (sed: no "next" after the last block)
  curl_cfg_list device | sed '$d' >"$W/dev.cfg"
  curl_cfg_list case | sed '$d' >"$W/case.cfg"
  # A first pass warms the server (its block cache is new; the page cache
  # holds the index from part 1): every device query, 20 case listings.
  curl -sS -K "$W/dev.cfg" >/dev/null
  head -n "$((20 * 7))" "$W/case.cfg" | sed '$d' | curl -sS -K - >/dev/null
  curl -sS -K "$W/dev.cfg" >"$W/dev.out"
  curl_lines http.device "$W/dev.out" 200
  curl -sS -K "$W/case.cfg" >"$W/case.out"
  curl_lines http.case "$W/case.out" 200
  b_log "  device: p50 $(us_pct http.device 0.5) ms, p99 $(us_pct http.device 0.99) ms; case: p50 $(us_pct http.case 0.5) ms, p99 $(us_pct http.case 0.99) ms"
fi

# ---- 2: the clip ------------------------------------------------------------------
CLIP_HOW="" CLIP_STATUS=""
clip_ffmpeg() { # START END OUT
  ffmpeg -hide_banner -nostdin -v error -y -ss "$1" -to "$2" -i "$OBJ" -c copy -movflags +faststart "$3"
}
timed() { # NAME CMD... -> records NAME (ms)
  local name=$1 t0 t1
  shift
  t0=$EPOCHREALTIME
  "$@" >"$W/$name.stdout" 2>"$W/$name.stderr" || b_die "$name failed: $(tail -n 3 "$W/$name.stderr")"
  t1=$EPOCHREALTIME
  record "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) * 1000}')"
}
clip_get() { # NAME START END OUT -> records NAME (ms), checks 200
  local out code secs size
  out=$(curl -sS -o "$4" -w '%{http_code} %{time_total} %{size_download}' "${AUTH[@]}" \
    "$C_URL/v1/evidence/$EVID/clip?start=$2&end=$3&mode=copy")
  read -r code secs size <<<"$out"
  [ "$code" = 200 ] || b_die "$1: the clip endpoint answered $code: $(head -c 300 "$4")"
  record "$1" "$(awk -v s="$secs" 'BEGIN {printf "%.1f", s * 1000}')"
  record "$1.size" "$size"
}
clip_dur() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1" 2>/dev/null || echo n/a; }
if ! skipped clip; then
  note_load clip
  # Is the endpoint there? (404 "no such endpoint" while it is not.)
  probe=$(curl -sS -o "$W/clip.probe" -w '%{http_code}' "${AUTH[@]}" \
    "$C_URL/v1/evidence/$EVID/clip?start=1790&end=1820&mode=copy")
  if [ "$probe" = 200 ]; then
    CLIP_HOW=endpoint CLIP_STATUS="GET /v1/evidence/{id}/clip?start=S&end=E&mode=copy answered 200 ($(stat -c %s "$W/clip.probe") bytes)"
  else
    CLIP_HOW=tool
    CLIP_STATUS="GET /v1/evidence/{id}/clip answered $probe: $(head -c 200 "$W/clip.probe" | tr -d '\n')"
    grep -q 'no such endpoint' "$W/clip.probe" && CLIP_STATUS="the clip endpoint is not there yet (404 no such endpoint)"
    "$CM" --help 2>&1 | grep -q 'clip IN OUT' || b_die "neither the clip endpoint nor custos-media clip is there"
  fi
  b_log "clip: $CLIP_STATUS; timing $([ "$CLIP_HOW" = endpoint ] && echo "the endpoint" || echo "custos-media clip") against ffmpeg"
  # Warm: the moov and the range, for both.
  clip_ffmpeg 1800 1830 "$W/clip.warm.mp4"
  "$CM" clip "$OBJ" "$W/clip.warm2.mp4" 1800 1830 copy >"$W/clip.report.json" 2>"$W/clip.report.err" ||
    b_die "custos-media clip failed: $(tail -n 3 "$W/clip.report.err")"
  CLIP_FF_DUR=$(clip_dur "$W/clip.warm.mp4") CLIP_CM_DUR=$(clip_dur "$W/clip.warm2.mp4")
  CLIP_FF_SIZE=$(stat -c %s "$W/clip.warm.mp4") CLIP_CM_SIZE=$(stat -c %s "$W/clip.warm2.mp4")
  settle
  for ((rep = 1; rep <= REPS; rep++)); do
    # A new range each rep (a keyframe every 2 s), so that the server makes
    # each clip rather than serving the last one; the same range for ffmpeg.
    s=$((1800 + 2 * rep)) e=$((1830 + 2 * rep))
    c_run() {
      if [ "$CLIP_HOW" = endpoint ]; then
        clip_get clip.custos "$s" "$e" "$W/clip.c.mp4"
        clip_get clip.cached "$s" "$e" "$W/clip.c2.mp4"
        cmp -s "$W/clip.c.mp4" "$W/clip.c2.mp4" || record clip.cached.differs 1
        # A copy clip queues a frame check (a decode of the clip, in the
        # background): let it end before the next run.
        wait_jobs 60 || b_log "warning: a job is still running after 60 s"
      else
        timed clip.custos "$CM" clip "$OBJ" "$W/clip.c.mp4" "$s" "$e" copy
      fi
      [ "$rep" = 1 ] && CLIP_C_DUR=$(clip_dur "$W/clip.c.mp4") CLIP_C_SIZE=$(stat -c %s "$W/clip.c.mp4")
      settle
    }
    f_run() { timed clip.ffmpeg clip_ffmpeg "$s" "$e" "$W/clip.f.mp4"; settle; }
    if ((rep % 2)); then c_run; f_run; else f_run; c_run; fi
    b_log "clip rep $rep/$REPS: custos $(tail -n 1 "$RES/clip.custos") ms$(have clip.cached && echo ", again (cached) $(tail -n 1 "$RES/clip.cached") ms"), ffmpeg $(tail -n 1 "$RES/clip.ffmpeg") ms (load $(cut -d' ' -f1 /proc/loadavg))"
  done
  if [ "$CLIP_HOW" = endpoint ]; then
    CLIP_CHECK=$(curl -sS "${AUTH[@]}" "$C_URL/v1/evidence/$EVID" | tr -d '\n' | { grep -o '"frame_check": *{[^}]*}' || true; } | head -n 1 | cut -c1-200)
  fi
fi

# ---- 3: /content against nginx -------------------------------------------------------
NGX=$T/nginx NGX_PID="" NGX_URL=""
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return; }
  done
  b_die "no free loopback port found"
}
nginx_up() {
  mkdir -p "$NGX/logs" "$NGX/tmp" "$NGX/root"
  # The same file: a link to the stored object (nginx follows it).
  ln -sf "$OBJ" "$NGX/root/rec.mp4"
  local port
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    {
      [ "$(id -u)" = 0 ] && echo "user root;"
      cat <<EOF
worker_processes auto;
error_log $NGX/logs/error.log warn;
pid $NGX/nginx.pid;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $NGX/tmp;
  proxy_temp_path $NGX/tmp;
  fastcgi_temp_path $NGX/tmp;
  uwsgi_temp_path $NGX/tmp;
  scgi_temp_path $NGX/tmp;
  server {
    listen 127.0.0.1:$port;
    location / { root $NGX/root; }
  }
}
EOF
    } >"$NGX/nginx.conf"
    "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" >>"$T/nginx.log" 2>&1 &
    NGX_PID=$!
    PIDS+=("$NGX_PID")
    for _ in $(seq 1 40); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' -r 0-0 "http://127.0.0.1:$port/rec.mp4")" = 206 ] && break
      kill -0 "$NGX_PID" 2>/dev/null || break
      nap 0.05
    done
    if kill -0 "$NGX_PID" 2>/dev/null; then break; fi
    wait "$NGX_PID" 2>/dev/null || true
    pids_drop "$NGX_PID"
    NGX_PID=""
  done
  [ -n "$NGX_PID" ] || b_die "nginx did not start (see $NGX/logs/error.log)"
  NGX_URL="http://127.0.0.1:$port/rec.mp4"
}
whole() { # NAME URL [auth...] -> records NAME (bytes/s)
  local name=$1 url=$2 out code speed size
  shift 2
  out=$(curl -sS -o /dev/null -w '%{http_code} %{speed_download} %{size_download}' "$@" "$url")
  read -r code speed size <<<"$out"
  [ "$code" = 200 ] || b_die "$name answered $code"
  [ "$size" = "$REC_SIZE" ] || b_die "$name sent $size bytes, not $REC_SIZE"
  record "$name" "$speed"
}
# N random 64 KiB ranges, the same list for both servers.
ranges_cfg() { # URL AUTH_HEADER|"" -> a curl config on stdout
  local i a
  for ((i = 0; i < RANGES; i++)); do
    a=${RANGE_OFFS[$i]}
    printf 'url = "%s"\noutput = "/dev/null"\nsilent\nshow-error\nrange = "%s-%s"\n' "$1" "$a" $((a + 65535))
    [ -z "$2" ] || printf 'header = "%s"\n' "$2"
    printf 'write-out = "%%{http_code} %%{time_total} %%{size_download}\\n"\nnext\n'
  done
}
ranges_run() { # NAME CFG [curl options] -> records NAME.rps; per-request times in NAME.us
  local name=$1 cfg=$2 t0 t1
  shift 2
  t0=$EPOCHREALTIME
  curl -sS --no-progress-meter "$@" -K "$cfg" >"$W/$name.out"
  t1=$EPOCHREALTIME
  [ "$(wc -l <"$W/$name.out")" = "$RANGES" ] || b_die "$name: $(wc -l <"$W/$name.out") answers, not $RANGES"
  curl_lines "$name" "$W/$name.out" 206
  [ "$(awk '$3 != 65536' "$W/$name.out" | wc -l)" = 0 ] || b_die "$name: an answer was not 64 KiB"
  record "$name.rps" "$(awk -v n="$RANGES" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')"
}
LEDGER_BEFORE="" LEDGER_AFTER=""
ledger_size() { curl -sS "${AUTH[@]}" "$C_URL/metrics" | awk '$1 == "custos_ledger_entries" {print $2}'; }
if ! skipped content; then
  note_load content
  nginx_up
  C_CONTENT=$C_URL/v1/evidence/$EVID/content
  b_log "content: $(basename "$REC") from custos and from nginx ($("$NGINX" -v 2>&1 | cut -d/ -f2)), warming both"
  whole warm.c "$C_CONTENT" "${AUTH[@]}"
  whole warm.n "$NGX_URL"
  rm -f "$RES/warm.c" "$RES/warm.n"
  for ((rep = 1; rep <= REPS; rep++)); do
    if ((rep % 2)); then
      whole content.custos "$C_CONTENT" "${AUTH[@]}"; nap 1
      whole content.nginx "$NGX_URL"; nap 1
    else
      whole content.nginx "$NGX_URL"; nap 1
      whole content.custos "$C_CONTENT" "${AUTH[@]}"; nap 1
    fi
    b_log "whole file rep $rep/$REPS: custos $(b_mb "$(tail -n 1 "$RES/content.custos")") MB/s, nginx $(b_mb "$(tail -n 1 "$RES/content.nginx")") MB/s (load $(cut -d' ' -f1 /proc/loadavg))"
  done
  RANGE_OFFS=()
  blocks=$((REC_SIZE / 65536 - 1))
  for ((i = 0; i < RANGES; i++)); do RANGE_OFFS+=($(((RANDOM * 32768 + RANDOM) % blocks * 65536))); done
  ranges_cfg "$C_CONTENT" "Authorization: Bearer $C_TOK" | sed '$d' >"$W/rc.cfg"
  ranges_cfg "$NGX_URL" "" | sed '$d' >"$W/rn.cfg"
  LEDGER_BEFORE=$(ledger_size)
  for ((rep = 1; rep <= 3; rep++)); do
    order="c n"
    ((rep % 2)) || order="n c"
    for who in $order; do
      name=ranges1.$who par=ranges$CONC.$who
      [ "$who" = c ] && cfg=$W/rc.cfg || cfg=$W/rn.cfg
      ranges_run "$name" "$cfg"
      ranges_run "$par" "$cfg" -Z --parallel-max "$CONC"
      nap 0.5
    done
    b_log "ranges rep $rep/3: custos $(tail -n 1 "$RES/ranges1.c.rps") req/s (1 conn), $(tail -n 1 "$RES/ranges$CONC.c.rps") ($CONC); nginx $(tail -n 1 "$RES/ranges1.n.rps"), $(tail -n 1 "$RES/ranges$CONC.n.rps")"
  done
  LEDGER_AFTER=$(ledger_size)
fi
custos_down
ELAPSED=$(awk -v a="$STARTED" -v b="$(b_now)" 'BEGIN {printf "%.0f", b - a}')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- summary ----------------------------------------------------------------------
verdict_lt() { # VALUE LIMIT -> met when value < limit
  [ "$1" = n/a ] && { echo n/a; return; }
  awk -v v="$1" -v t="$2" 'BEGIN {exit !(v < t)}' && echo met || echo MISSED
}
verdict_ge() {
  [ "$1" = n/a ] && { echo n/a; return; }
  awk -v v="$1" -v t="$2" 'BEGIN {exit !(v >= t)}' && echo met || echo MISSED
}
row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }
ms() { if [ "$1" = n/a ]; then echo n/a; else awk -v v="$1" 'BEGIN {printf "%.2f", v / 1000}'; fi; }
range_of() { printf '%s-%s' "$(b_min <"$RES/$1")" "$(b_max <"$RES/$1")"; }
mbs_med() { b_mb "$(med "$1")"; }
mbs_range() { printf '%s-%s' "$(b_mb "$(b_min <"$RES/$1")")" "$(b_mb "$(b_max <"$RES/$1")")"; }

summary() {
  echo "Custos review benchmark (bench/review/run.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:  $(b_machine)"
  echo "disk:     $(df --output=source "$T" | tail -n 1) ($FSTYPE), scratch $TMPBASE"
  echo "build:    $BUILD_NOTE"
  echo "peers:    $(ffmpeg -hide_banner -version | head -n 1 | cut -d' ' -f1-3), nginx $("$NGINX" -v 2>&1 | cut -d/ -f2), $(curl --version | head -n 1 | cut -d' ' -f1-2)"
  [ -z "${REC_DESC:-}" ] || echo "input:    $REC_DESC"
  echo "load:     $LOAD_START before, $LOAD_END after (1, 5, 15 min); at each part's start: ${LOADS[*]-}"
  echo "took:     ${ELAPSED} s"
  echo
  echo "| measure | custos | peer / context | target | met? |"
  echo "| --- | ---: | ---: | --- | --- |"
  if ! skipped index; then
    local a50 a99 b50 b99
    a50=$(kvget "$KV" device.warm.p50_us) a99=$(kvget "$KV" device.warm.p99_us)
    b50=$(kvget "$KV" case.warm.p50_us) b99=$(kvget "$KV" case.warm.p99_us)
    row "(a) device time-range query, 100 items (idx_evidence_list_raw), p99 (p50), ms" "$(ms "$a99") ($(ms "$a50"))" \
      "cold: $(ms "$(kvget "$KV" device.cold.p99_us)") ($(ms "$(kvget "$KV" device.cold.p50_us)"))" "p99 < $T_DEVICE_MS ms" \
      "$(verdict_lt "$(ms "$a99")" "$T_DEVICE_MS")"
    row "(b) case listing, 1,000 items (idx_evidence_list_raw), p99 (p50), ms" "$(ms "$b99") ($(ms "$b50"))" \
      "cold, 1st: $(ms "$(kvget "$KV" case.cold.p50_us)")" "p99 < $T_CASE_MS ms" "$(verdict_lt "$(ms "$b99")" "$T_CASE_MS")"
    row "(a) the same, idx_evidence_list (parsed records), p99 (p50), ms" \
      "$(ms "$(kvget "$KV" device.parsed.p99_us)") ($(ms "$(kvget "$KV" device.parsed.p50_us)"))" "" "context" "-"
    row "(b) the same, idx_evidence_list (parsed records), p99 (p50), ms" \
      "$(ms "$(kvget "$KV" case.parsed.p99_us)") ($(ms "$(kvget "$KV" case.parsed.p50_us)"))" "" "context" "-"
    row "(b) a case linked without record copies (idx_batch_link), p99 (p50), ms" \
      "$(ms "$(kvget "$KV" case.old.p99_us)") ($(ms "$(kvget "$KV" case.old.p50_us)"))" "" "context" "-"
    if have http.device.us; then
      row "(a) end to end: GET /v1/evidence through the server (curl), p99 (p50), ms" \
        "$(us_pct http.device 0.99) ($(us_pct http.device 0.5))" \
        "$(awk '{printf "%.0f KiB", $1/1024}' "$RES/http.device.bytes") of JSON" "p99 < $T_DEVICE_MS ms" \
        "$(verdict_lt "$(us_pct http.device 0.99)" "$T_DEVICE_MS") (context)"
      row "(b) end to end: GET /v1/evidence through the server (curl), p99 (p50), ms" \
        "$(us_pct http.case 0.99) ($(us_pct http.case 0.5))" \
        "$(awk '{printf "%.0f KiB", $1/1024}' "$RES/http.case.bytes") of JSON" "p99 < $T_CASE_MS ms" \
        "$(verdict_lt "$(us_pct http.case 0.99)" "$T_CASE_MS") (context)"
    fi
  fi
  if have clip.custos; then
    local c f
    c=$(med clip.custos) f=$(med clip.ffmpeg)
    if [ "$CLIP_HOW" = endpoint ]; then
      row "copy-mode 30 s clip, GET …/clip (made), ms" "$c [$(range_of clip.custos)]" "ffmpeg -c copy: $f [$(range_of clip.ffmpeg)]" \
        "< $T_CLIP_MS ms" "$(verdict_lt "$c" "$T_CLIP_MS")"
      row "the same clip again (cached), ms" "$(med clip.cached) [$(range_of clip.cached)]" "" "context" "-"
    else
      row "copy-mode 30 s clip, custos-media clip (process), ms" "$c [$(range_of clip.custos)]" \
        "ffmpeg -c copy: $f [$(range_of clip.ffmpeg)]" "< $T_CLIP_MS ms" "$(verdict_lt "$c" "$T_CLIP_MS")"
    fi
    row "clip: ffmpeg ms / custos ms" "$(b_div "$f" "$c")" "" "context" "-"
  fi
  if have content.custos; then
    local r
    r=$(b_div "$(med content.custos)" "$(med content.nginx)")
    row "GET /content, whole file, MB/s" "$(mbs_med content.custos) [$(mbs_range content.custos)]" \
      "nginx: $(mbs_med content.nginx) [$(mbs_range content.nginx)]" "≥ $T_CONTENT × nginx" "$(verdict_ge "$r" "$T_CONTENT")"
    row "/content / nginx" "$r" "" "≥ $T_CONTENT" "$(verdict_ge "$r" "$T_CONTENT")"
    row "64 KiB ranges, 1 connection, req/s" "$(med ranges1.c.rps) [$(range_of ranges1.c.rps)]" \
      "nginx: $(med ranges1.n.rps) [$(range_of ranges1.n.rps)]" "context" "-"
    row "64 KiB ranges, $CONC connections, req/s" "$(med "ranges$CONC.c.rps") [$(range_of "ranges$CONC.c.rps")]" \
      "nginx: $(med "ranges$CONC.n.rps") [$(range_of "ranges$CONC.n.rps")]" "context" "-"
    row "64 KiB range, 1 connection, p50 / p99 ms" "$(us_pct ranges1.c 0.5) / $(us_pct ranges1.c 0.99)" \
      "nginx: $(us_pct ranges1.n 0.5) / $(us_pct ranges1.n 0.99)" "context" "-"
  fi
  echo
  if ! skipped index; then
    echo "Index (review_bench, in-process; full output below):"
    echo "  load: $(kvget "$KV" load.secs) s for $RECORDS records ($(kvget "$KV" load.rate | cut -d. -f1) records/s), records $(kvget "$KV" load.record_bytes | cut -d. -f1) bytes of JSON each; index $(kvget "$KV" load.dir_gb) GB, $(kvget "$KV" compact.dir_gb) GB after a $(kvget "$KV" compact.secs) s compaction"
    echo "  right after the load: (a) p99 $(ms "$(kvget "$KV" device.loaded.p99_us)") ms, (b) p99 $(ms "$(kvget "$KV" case.loaded.p99_us)") ms"
    echo "  links: $(kvget "$KV" load.link_p50_ms) ms p50 per idx_evidence_link (one synced commit each)"
    echo
  fi
  if have clip.custos; then
    echo "Clip: $CLIP_STATUS."
    echo "  ranges start=1800+2r..end=1830+2r (keyframes every 2 s); ffmpeg: -ss S -to E -i OBJECT -c copy -movflags +faststart"
    echo "  outputs (first run): ffmpeg ${CLIP_FF_DUR:-n/a} s, $(awk -v b="${CLIP_FF_SIZE:-0}" 'BEGIN {printf "%.1f MB", b/1e6}'); custos-media ${CLIP_CM_DUR:-n/a} s, $(awk -v b="${CLIP_CM_SIZE:-0}" 'BEGIN {printf "%.1f MB", b/1e6}')$([ "$CLIP_HOW" = endpoint ] && echo "; endpoint ${CLIP_C_DUR:-n/a} s, $(awk -v b="${CLIP_C_SIZE:-0}" 'BEGIN {printf "%.1f MB", b/1e6}')")"
    [ -z "${CLIP_CHECK:-}" ] || echo "  the first clip's frame check (a background job; the recording's frame hashes failed, see above): $CLIP_CHECK"
    have clip.cached.differs && echo "  NOTE: the cached answer differed from the first in $(wc -l <"$RES/clip.cached.differs") runs"
    echo
  fi
  if have content.custos; then
    echo "Content: $REPS whole-file fetches each, interleaved, after one warm-up fetch each (page cache warm); nginx serves a symlink to Custos's object file."
    echo "  ranges: $RANGES random 64 KiB ranges, the same list for both, one curl process; 3 passes each; ledger entries ${LEDGER_BEFORE:-?} -> ${LEDGER_AFTER:-?} (one \"accessed\" event per Custos answer)"
    [ -z "${UPLOAD_MBS:-}" ] || echo "  upload of the recording (tus, one PATCH, curl): $UPLOAD_MBS MB/s"
    echo
  fi
  echo "Raw samples (ms, bytes/s, req/s), in run order:"
  local f
  for f in "$RES"/*; do
    case $f in *.us) continue ;; esac
    printf '  %-18s %s\n' "$(basename "$f")" "$(tr '\n' ' ' <"$f")"
  done
  if [ -s "$BENCH_OUT" ] && ! skipped index; then
    echo
    echo "review_bench output:"
    sed 's/^/  /' "$BENCH_OUT"
  fi
}

mkdir -p "$(dirname "$RESULTS")"
summary | tee "$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
cp "$RESULTS" "$OUT/review-$STAMP.txt"
b_log "summary written to $RESULTS (and $OUT/review-$STAMP.txt)"
if [ "$STRICT" = 1 ] && grep -q '| MISSED |$' "$RESULTS"; then exit 3; fi
exit 0
