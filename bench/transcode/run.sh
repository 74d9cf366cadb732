#!/usr/bin/env bash
# bench/transcode: media/'s operations against ffmpeg 5.1 doing the same
# work on the same input, through tests/tools/custos-media (one operation
# per process, JSON report on stdout):
#
#   1  frame hashes: custos-media framehash vs `ffmpeg -f framehash -hash
#      sha256` (the outputs must be identical, byte for byte)
#   2  remux master (H.264 + AAC copied into Matroska, then the lossless
#      check: the master decoded and compared with the original's frame
#      hashes, made beforehand as the server does) vs ffmpeg's frame
#      hashes alone, and vs `ffmpeg -c copy` to Matroska (context)
#   3  FFV1 master of an MPEG-2 + SMPTE 302M (24-bit PCM) version of the
#      input in MPEG-TS (FFV1 + FLAC, then the check) vs ffmpeg with
#      open_ffv1()'s encoder settings and FLAC; ffmpeg decoding its own
#      FFV1 file, which bounds any check that decodes the whole master; and
#      ffmpeg's frame hashes of it, the same proof made with the CLI
#   4  access copy (libx264 veryfast CRF 23, 1280 wide, AAC 128k, MP4
#      faststart) vs ffmpeg with access.c's defaults
#   5  CPU time / wall time of each job
#   6  two jobs (master + access of the same input) at once vs one after
#      the other
#   7  peak RSS of each run, next to the input's size, and again on a 10 s
#      cut of the same input (memory must not grow with the recording)
#
# Every timed command runs after a read of its input (page cache warm),
# under /usr/bin/time (wall, user, sys, peak RSS); runs are interleaved
# (custos, ffmpeg, custos, ...) and medians printed. Both tools get both
# cores. For the masters, the process's written bytes and CPU ticks are
# sampled (/proc/PID/io, /proc/PID/stat) to split the run into the write
# phase and the lossless check.
#
# The inputs are generated once into bench/out/transcode/ (ffmpeg lavfi
# testsrc2 with temporal noise, see --noise) and reused; outputs go to a
# scratch directory there and are removed after each run.
#
# This is not a test: it is never run by ctest or CI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

usage() {
  cat <<'EOF'
usage: bench/transcode/run.sh [options]

  --reps N          timed runs of each command (default 3; medians)
  --secs S          length of the generated input (default 60)
  --noise N         strength of the temporal noise on testsrc2 (default 8:
                    about 12 Mbit/s at CRF 23, like a body-worn camera;
                    0 = the bare test pattern, which compresses unrealistically)
  --skip LIST       comma-separated: framehash,remux,ffv1,access,pair,rss
  --results FILE    also write the summary to FILE
                    (default bench/out/transcode/summary.txt; git-ignored)
  --keep            keep the scratch outputs of the last run
  --strict          exit 3 when a target is missed
  -h, --help        this text
Environment:
  CUSTOS_MEDIA=BIN  the custos-media binary to measure (default: built
                    Release in BUILD_DIR)
  BUILD_DIR=DIR     the Release build (default ROOT/build-bench-tc)
EOF
}

REPS=3 SECS=60 NOISE=8 SKIP="" RESULTS="" KEEP=0 STRICT=0
while [ $# -gt 0 ]; do
  case $1 in
  --reps) REPS=$2; shift 2 ;;
  --secs) SECS=$2; shift 2 ;;
  --noise) NOISE=$2; shift 2 ;;
  --skip) SKIP=$2; shift 2 ;;
  --results) RESULTS=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  --strict) STRICT=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
  esac
done
skipped() { [[ ",$SKIP," == *",$1,"* ]]; }

# Targets (the issue).
T_FRAMEHASH=2.0   # custos framehash speed / ffmpeg framehash speed
T_REMUX=1.5       # remux master incl. check / ffmpeg framehash
T_FFV1=0.95       # FFV1 master incl. check / ffmpeg FFV1 transcode
T_ACCESS=0.95     # access copy / ffmpeg
T_CPU_MASTER=1.7  # CPU time / wall time of one master job
T_PAIR=1.0        # sequential wall / parallel wall
T_RSS_GROWTH=1.15 # peak RSS, full input / 10 s cut

for tool in cmake make ffmpeg ffprobe awk; do
  command -v "$tool" >/dev/null || b_die "$tool is needed"
done
[ -x /usr/bin/time ] || b_apt_install time

OUT=$ROOT/bench/out/transcode
mkdir -p "$OUT"
[ -n "$RESULTS" ] || RESULTS=$OUT/summary.txt

# ---- build ------------------------------------------------------------------
if [ -n "${CUSTOS_MEDIA:-}" ]; then
  [ -x "$CUSTOS_MEDIA" ] || b_die "CUSTOS_MEDIA=$CUSTOS_MEDIA is not an executable"
  CM=$CUSTOS_MEDIA
  BUILD_NOTE="$CM (given)"
else
  BUILD=${BUILD_DIR:-$ROOT/build-bench-tc}
  mkdir -p "$BUILD"
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    b_log "configuring a Release build in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD/cmake.log" 2>&1 ||
      b_die "cmake failed; see $BUILD/cmake.log"
  fi
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt" ||
    b_die "$BUILD is not a Release build"
  # Always re-made: the tree changes under us.
  b_log "building custos-media in $BUILD"
  make -C "$BUILD" -j"$(nproc)" custos-media >"$BUILD/make-transcode.log" 2>&1 ||
    b_die "build failed; see $BUILD/make-transcode.log"
  CM=$BUILD/tests/tools/custos-media
  BUILD_NOTE="$CM (Release, $(b_tree_version "$ROOT"))"
fi
[ -x "$CM" ] || b_die "no custos-media at $CM"

# ---- inputs (generated once) ------------------------------------------------
FF=(ffmpeg -hide_banner -nostdin -v error -y)
TAG="${SECS}s-n${NOISE}"
IN_H=$OUT/in-h264-aac-1080p30-$TAG.mp4
IN_M=$OUT/in-mpeg2-s302m-1080p30-$TAG.ts
CUT_H=$OUT/in-h264-aac-1080p30-$TAG-cut10.mp4
CUT_M=$OUT/in-mpeg2-s302m-1080p30-$TAG-cut10.ts
make_input() { # FILE ffmpeg-args...
  local f=$1
  shift
  [ -s "$f" ] && return 0
  b_log "generating $(basename "$f") (once)"
  "${FF[@]}" "$@" "$f.tmp.${f##*.}" || b_die "cannot generate $f"
  mv "$f.tmp.${f##*.}" "$f"
}
VF=()
[ "$NOISE" = 0 ] || VF=(-vf "noise=alls=$NOISE:allf=t")
# H.264 High + AAC-LC stereo 48 kHz, what a camera or phone gives.
make_input "$IN_H" -f lavfi -i testsrc2=size=1920x1080:rate=30 \
  -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000" -t "$SECS" \
  "${VF[@]}" -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -ac 2 -movflags +faststart
# The same pictures as MPEG-2 + SMPTE 302M (24-bit PCM, as broadcast
# MPEG-TS carries it): neither codec is on the master's allow-list, so the
# master makes FFV1 + FLAC of them. (MP2 would not do: libavcodec decodes
# it to float samples, which the master copies rather than make FLAC of;
# pcm_* is on the allow-list and copied too.)
make_input "$IN_M" -i "$IN_H" -map 0 -c:v mpeg2video -q:v 2 -c:a s302m -strict -2 -f mpegts
make_input "$CUT_H" -i "$IN_H" -map 0 -t 10 -c copy -movflags +faststart
make_input "$CUT_M" -i "$IN_M" -map 0 -t 10 -c copy -f mpegts

mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN {printf "%.1f", b/1048576}'; }
mbps() { awk -v b="$(stat -c %s "$1")" -v s="$2" 'BEGIN {printf "%.1f", b*8/s/1e6}'; }
SIZE_H=$(mib "$IN_H") SIZE_M=$(mib "$IN_M")

# ---- scratch, timing --------------------------------------------------------
W=$OUT/work
RES=$OUT/res
rm -rf "$W" "$RES"
mkdir -p "$W" "$RES"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local j
  for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then b_log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)
# A sleep without a fork: read with a timeout on a pipe nobody writes.
exec {SLEEPFD}<> <(:)
nap() { read -r -t "$1" -u "$SLEEPFD" _ || true; }

record() { printf '%s\n' "$2" >>"$RES/$1"; }
have() { [ -s "$RES/$1" ]; }
med() { b_median <"$RES/$1"; }

warm() { cat "$@" >/dev/null; }

# Writes back and drops what the last run wrote, so it does not slow the next.
settle() {
  rm -f "$W"/out.* "$W"/pair.*
  sync
  nap 1
}

# run_timed NAME [--phases OUTFILE] -- CMD...: runs CMD under /usr/bin/time,
# records NAME.{wall,user,sys,cpu,rss}; with --phases, samples the process's
# written bytes and CPU ticks and records NAME.{wphase,wcpu} (wall and CPU
# seconds until OUTFILE was fully written: the write phase of a master).
run_timed() {
  local name=$1 phases="" tf pid child="" t0 t1 line wall user sys rss rc=0
  shift
  if [ "$1" = --phases ]; then phases=$2; shift 2; fi
  [ "$1" = -- ] && shift
  tf=$W/$name.time
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$W/$name.stdout" 2>"$W/$name.stderr" &
  pid=$!
  if [ -n "$phases" ]; then
    local samples=$W/$name.samples k v ticks f
    : >"$samples"
    while kill -0 "$pid" 2>/dev/null; do
      if [ -z "$child" ]; then
        # (no newline at the end of that file: read "fails" but sets child)
        read -r child _ 2>/dev/null <"/proc/$pid/task/$pid/children" || true
        [ -n "$child" ] || { nap 0.01; continue; }
      fi
      local wchar=""
      while read -r k v; do case $k in wchar:) wchar=$v ;; esac; done 2>/dev/null <"/proc/$child/io" || break
      read -r line 2>/dev/null <"/proc/$child/stat" || break
      f=${line##*) }
      # shellcheck disable=SC2206 # fields of /proc/PID/stat
      f=($f)
      ticks=$((f[11] + f[12]))
      printf '%s %s %s\n' "$EPOCHREALTIME" "$wchar" "$ticks" >>"$samples"
      nap 0.05
    done
  fi
  wait "$pid" || rc=$?
  t1=$EPOCHREALTIME
  if [ "$rc" != 0 ]; then
    b_log "$name failed (exit $rc):"
    tail -n 5 "$W/$name.stderr" >&2
    b_die "$name failed; see $W/$name.stderr"
  fi
  read -r wall user sys rss <<<"$(tail -n 1 "$tf")"
  # /usr/bin/time's %e has 10 ms steps; ours is finer.
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  record "$name.wall" "$wall"
  record "$name.user" "$user"
  record "$name.sys" "$sys"
  record "$name.cpu" "$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')"
  record "$name.rss" "$rss"
  if [ -n "$phases" ]; then
    local size wp wc
    size=$(stat -c %s "$phases")
    # The first sample at which the process had written the whole master:
    # its trailer is out and the check begins.
    read -r wp wc <<<"$(awk -v t0="$t0" -v s="$size" -v tk="$TICK" \
      '$2 >= s {printf "%.3f %.2f\n", $1 - t0, $3 / tk; f = 1; exit} END {if (!f) print "n/a n/a"}' "$W/$name.samples")"
    if [ "$wp" != n/a ]; then
      record "$name.wphase" "$wp"
      record "$name.wcpu" "$wc"
    fi
  fi
  MSG="wall $wall s, user $user s, sys $sys s, peak RSS $((rss / 1024)) MiB"
}

step() { # LABEL NAME [--phases F] -- CMD... (warms the inputs named by WARM)
  local label=$1
  shift
  warm "${WARM[@]}"
  run_timed "$@"
  b_log "$label: $MSG (load $(cut -d' ' -f1 /proc/loadavg))"
}

# ---- the commands -----------------------------------------------------------
FH_FF=(ffmpeg -hide_banner -nostdin -v error -y -i "$IN_H" -map '0:V?' -map '0:a?' -f framehash -hash sha256)
REMUX_FF=(ffmpeg -hide_banner -nostdin -v error -y -i "$IN_H" -map 0 -c copy)
# master.c open_ffv1(): level 3, gop 1, slicecrc 1, coder range_def
# (the default state table: ffmpeg's `-coder 1` is range_tab, a custom
# one), context 1, 16 slices above 1280x720, threads auto (slice threads);
# open_flac(): the FLAC encoder's defaults (compression level 5).
FFV1_FF=(ffmpeg -hide_banner -nostdin -v error -y -i "$IN_M" -map 0 -c:v ffv1 -level 3 -g 1
  -slicecrc 1 -slices 16 -coder range_def -context 1 -c:a flac)
# The least a check that decodes every frame of the master can cost: the
# decode alone, no hashing, with slice threads (the FFV1 decoder of libav*
# 5.1 gains nothing from frame threads, ffmpeg's default).
FFV1_DEC_FF=(ffmpeg -hide_banner -nostdin -v error -y -thread_type slice -threads "$(nproc)")
# access.c's defaults: libx264 veryfast CRF 23 profile high, keyframe every
# 2 s (gop = 2 x frame rate = 60), longest side 1280 (bicubic: swscale's
# and the scale filter's default), yuv420p; AAC-LC 128 kbit/s; faststart.
ACCESS_FF=(ffmpeg -hide_banner -nostdin -v error -y -i "$IN_H" -c:v libx264 -preset veryfast -crf 23
  -profile:v high -g 60 -vf scale=1280:-2 -pix_fmt yuv420p -c:a aac -b:a 128k -movflags +faststart)

# ---- the runs ---------------------------------------------------------------
STARTED=$(b_now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
  b_log "warning: load average is $LOAD_START on $(nproc) cores before we start;" \
    "other work on this machine will show up in the figures (compare ratios, not absolutes)"
fi
FH_SAME="not compared"
# How much of the machine two busy threads get right now (2.00 = both
# cores): other work on the machine shows up here first.
avail() {
  local t0 t1 tf=$W/avail.time
  t0=$EPOCHREALTIME
  # shellcheck disable=SC2016 # expanded by the inner bash
  /usr/bin/time -f '%U %S' -o "$tf" bash -c 'spin() { local e=$((SECONDS + 3)); while ((SECONDS < e)); do :; done; }; spin & spin; wait'
  t1=$EPOCHREALTIME
  record avail "$(awk -v a="$t0" -v b="$t1" -v u="$(cut -d' ' -f1 "$tf")" -v s="$(cut -d' ' -f2 "$tf")" 'BEGIN {printf "%.2f", (u + s) / (b - a)}')"
  b_log "cores available to two busy threads: $(tail -n 1 "$RES/avail") of $(nproc) (load $(cut -d' ' -f1 /proc/loadavg))"
}
# The server makes the frame hashes first and checks each master against
# them (the master job follows the framehash job), so the masters here get
# the same reference: the original's frame hashes and report, made once.
REF_H=("$OUT/ref-h.fh" "$OUT/ref-h.json") REF_M=("$OUT/ref-m.fh" "$OUT/ref-m.json")
"$CM" framehash "$IN_H" "${REF_H[0]}" >"${REF_H[1]}" || b_die "framehash of $IN_H failed"
"$CM" framehash "$IN_M" "${REF_M[0]}" >"${REF_M[1]}" || b_die "framehash of $IN_M failed"
for ((rep = 1; rep <= REPS; rep++)); do
  tag="rep $rep/$REPS"
  avail
  # Who goes first alternates between reps.
  odd=$((rep % 2))
  if ! skipped framehash; then
    WARM=("$IN_H")
    fh_c() { step "$tag custos framehash" cfh -- "$CM" framehash "$IN_H" "$W/out.cfh.txt"; }
    fh_f() { step "$tag ffmpeg framehash" ffh -- "${FH_FF[@]}" "$W/out.ffh.txt"; }
    if [ "$odd" = 1 ]; then fh_c; fh_f; else fh_f; fh_c; fi
    if [ "$rep" = 1 ]; then
      cp "$W/out.cfh.txt" "$OUT/framehash-custos.txt"
      cp "$W/out.ffh.txt" "$OUT/framehash-ffmpeg.txt"
      if cmp -s "$W/out.cfh.txt" "$W/out.ffh.txt"; then
        FH_SAME="identical ($(grep -vc '^#' "$W/out.cfh.txt") frame lines, $(stat -c %s "$W/out.cfh.txt") bytes)"
      else
        FH_SAME="DIFFERENT: $(diff "$W/out.cfh.txt" "$W/out.ffh.txt" | grep -c '^[<>]') lines differ (first: $(diff "$W/out.cfh.txt" "$W/out.ffh.txt" | sed -n 2p | cut -c1-80))"
      fi
      b_log "frame hashes, custos vs ffmpeg: $FH_SAME"
    fi
    settle
  fi
  if ! skipped remux; then
    WARM=("$IN_H")
    rm_c() {
      step "$tag custos master (remux + check)" cmr --phases "$W/out.cmr.mkv" -- "$CM" master "$IN_H" "$W/out.cmr.mkv" "${REF_H[@]}"
      [ "$rep" = 1 ] && cp "$W/cmr.stdout" "$OUT/master-remux-report.json"
      settle
    }
    rm_f() { step "$tag ffmpeg -c copy (remux only)" fcp -- "${REMUX_FF[@]}" "$W/out.fcp.mkv"; settle; }
    if [ "$odd" = 1 ]; then rm_c; rm_f; else rm_f; rm_c; fi
  fi
  if ! skipped ffv1; then
    WARM=("$IN_M")
    fv_c() {
      step "$tag custos master (FFV1 + FLAC + check)" cmf --phases "$W/out.cmf.mkv" -- "$CM" master "$IN_M" "$W/out.cmf.mkv" "${REF_M[@]}"
      [ "$rep" = 1 ] && cp "$W/cmf.stdout" "$OUT/master-ffv1-report.json" && record ffv1.size "$(stat -c %s "$W/out.cmf.mkv")"
      settle
    }
    fv_f() {
      step "$tag ffmpeg FFV1 + FLAC" fmf -- "${FFV1_FF[@]}" "$W/out.fmf.mkv"
      [ "$rep" = 1 ] && record ffv1ff.size "$(stat -c %s "$W/out.fmf.mkv")"
      WARM=("$W/out.fmf.mkv")
      step "$tag ffmpeg decodes its FFV1 + FLAC" fdf -- "${FFV1_DEC_FF[@]}" -i "$W/out.fmf.mkv" -map 0 -f null -
      step "$tag ffmpeg frame hashes of its FFV1 + FLAC" fdh -- "${FFV1_DEC_FF[@]}" -i "$W/out.fmf.mkv" \
        -map '0:V?' -map '0:a?' -f framehash -hash sha256 "$W/out.fdh.txt"
      WARM=("$IN_M")
      settle
    }
    if [ "$odd" = 1 ]; then fv_c; fv_f; else fv_f; fv_c; fi
  fi
  if ! skipped access; then
    WARM=("$IN_H")
    ac_c() {
      step "$tag custos access" cac -- "$CM" access "$IN_H" "$W/out.cac.mp4"
      [ "$rep" = 1 ] && cp "$W/cac.stdout" "$OUT/access-report.json" && record access.size "$(stat -c %s "$W/out.cac.mp4")"
      settle
    }
    ac_f() {
      step "$tag ffmpeg access" fac -- "${ACCESS_FF[@]}" "$W/out.fac.mp4"
      [ "$rep" = 1 ] && record accessff.size "$(stat -c %s "$W/out.fac.mp4")"
      settle
    }
    if [ "$odd" = 1 ]; then ac_c; ac_f; else ac_f; ac_c; fi
  fi
  if ! skipped pair; then
    # master (remux + check) and access of the same input: at once, and one
    # after the other.
    pair_par() {
      local t0 t1
      warm "$IN_H"
      t0=$EPOCHREALTIME
      "$CM" master "$IN_H" "$W/pair.m.mkv" "${REF_H[@]}" >/dev/null 2>"$W/pair.m.err" &
      local a=$!
      "$CM" access "$IN_H" "$W/pair.a.mp4" >/dev/null 2>"$W/pair.a.err" &
      local b=$!
      wait "$a" || b_die "parallel master failed: $(tail -n 3 "$W/pair.m.err")"
      wait "$b" || b_die "parallel access failed: $(tail -n 3 "$W/pair.a.err")"
      t1=$EPOCHREALTIME
      record par.wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
      b_log "$tag master & access in parallel: $(tail -n 1 "$RES/par.wall") s (load $(cut -d' ' -f1 /proc/loadavg))"
      settle
    }
    pair_seq() {
      local t0 t1
      warm "$IN_H"
      t0=$EPOCHREALTIME
      "$CM" master "$IN_H" "$W/pair.m.mkv" "${REF_H[@]}" >/dev/null 2>"$W/pair.m.err" ||
        b_die "sequential master failed: $(tail -n 3 "$W/pair.m.err")"
      "$CM" access "$IN_H" "$W/pair.a.mp4" >/dev/null 2>"$W/pair.a.err" ||
        b_die "sequential access failed: $(tail -n 3 "$W/pair.a.err")"
      t1=$EPOCHREALTIME
      record seq.wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
      b_log "$tag master then access: $(tail -n 1 "$RES/seq.wall") s (load $(cut -d' ' -f1 /proc/loadavg))"
      settle
    }
    if [ "$odd" = 1 ]; then pair_par; pair_seq; else pair_seq; pair_par; fi
  fi
done
# Memory against length: each operation once more on a 10 s cut.
if ! skipped rss; then
  WARM=("$CUT_H")
  skipped framehash || { step "custos framehash, 10 s cut" cut.cfh -- "$CM" framehash "$CUT_H" "$W/out.x.txt"; settle; }
  skipped remux || { step "custos master (remux), 10 s cut" cut.cmr -- "$CM" master "$CUT_H" "$W/out.x.mkv"; settle; }
  skipped access || { step "custos access, 10 s cut" cut.cac -- "$CM" access "$CUT_H" "$W/out.x.mp4"; settle; }
  WARM=("$CUT_M")
  skipped ffv1 || { step "custos master (FFV1), 10 s cut" cut.cmf -- "$CM" master "$CUT_M" "$W/out.x.mkv"; settle; }
fi
avail
ELAPSED=$(awk -v a="$STARTED" -v b="$(b_now)" 'BEGIN {printf "%.0f", b-a}')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- summary ----------------------------------------------------------------
fmt_s() { have "$1" && printf '%.2f' "$(med "$1")" || echo n/a; }
range() { have "$1" && printf '%.2f-%.2f' "$(b_min <"$RES/$1")" "$(b_max <"$RES/$1")" || echo n/a; }
rss_mib() { have "$1" && awk -v k="$(b_max <"$RES/$1")" 'BEGIN {printf "%.1f", k/1024}' || echo n/a; }
verdict() { # VALUE TARGET -> met / MISSED (value >= target)
  [ "$1" = n/a ] && { echo n/a; return; }
  awk -v r="$1" -v t="$2" 'BEGIN {exit !(r >= t)}' && echo met || echo MISSED
}
verdict_le() { # VALUE TARGET -> met when value <= target
  [ "$1" = n/a ] && { echo n/a; return; }
  awk -v r="$1" -v t="$2" 'BEGIN {exit !(r <= t)}' && echo met || echo MISSED
}
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
# A speed ratio: peer seconds / custos seconds (> 1: custos is faster).
speed_row() { # LABEL CUSTOS_KEY PEER_KEY TARGET
  local c p r v
  c=$(fmt_s "$2") p=$(fmt_s "$3")
  if [ "$c" = n/a ] && [ "$p" = n/a ]; then return 0; fi
  if [ "$c" = n/a ] || [ "$p" = n/a ]; then row "$1" "$c" "$p" n/a "${4:+≥ }${4:-context}" n/a; return; fi
  r=$(b_div "$(med "$3")" "$(med "$2")")
  if [ -n "${4:-}" ]; then v=$(verdict "$r" "$4"); row "$1" "$c" "$p" "$r" "≥ $4" "$v"
  else row "$1" "$c" "$p" "$r" "context" "-"; fi
}
# The same in CPU seconds (user + sys), steadier on a busy machine.
cpu_row() { # LABEL CUSTOS_KEY PEER_KEY
  have "$2.cpu" && have "$3.cpu" || return 0
  row "$1, CPU s" "$(fmt_s "$2.cpu")" "$(fmt_s "$3.cpu")" "$(b_div "$(med "$3.cpu")" "$(med "$2.cpu")")" "context" "-"
}
cpu_wall() { # KEY -> CPU/wall of the medians
  if ! have "$1.cpu" || ! have "$1.wall"; then echo n/a; return; fi
  b_div "$(med "$1.cpu")" "$(med "$1.wall")"
}
# The check = what follows the write phase.
phase_med() { # KEY -> median check seconds, check CPU/wall, write CPU/wall
  local k=$1 i n
  have "$k.wphase" || { echo "n/a n/a n/a n/a"; return; }
  n=$(wc -l <"$RES/$k.wphase")
  for ((i = 1; i <= n; i++)); do
    paste -d' ' <(sed -n "${i}p" "$RES/$k.wall") <(sed -n "${i}p" "$RES/$k.cpu") \
      <(sed -n "${i}p" "$RES/$k.wphase") <(sed -n "${i}p" "$RES/$k.wcpu")
  done | awk '{w=$1; c=$2; wp=$3; wc=$4; print w-wp, (w-wp>0 ? (c-wc)/(w-wp) : 0), (wp>0 ? wc/wp : 0), wp, (w>0 ? (w-wp)/w : 0)}' >"$W/$k.phases"
  printf '%s %s %s %s %s\n' "$(cut -d' ' -f1 "$W/$k.phases" | b_median)" "$(cut -d' ' -f2 "$W/$k.phases" | b_median)" \
    "$(cut -d' ' -f3 "$W/$k.phases" | b_median)" "$(cut -d' ' -f4 "$W/$k.phases" | b_median)" \
    "$(cut -d' ' -f5 "$W/$k.phases" | b_median)"
}

summary() {
  echo "Custos transcode benchmark (bench/transcode/run.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:  $(b_machine)"
  echo "tool:     $BUILD_NOTE"
  echo "peer:     $(ffmpeg -hide_banner -version | head -n 1 | cut -d' ' -f1-3), the same libav* libraries as custos-media; $(dpkg-query -W -f='${Package} ${Version}\n' 'libx264-*' 2>/dev/null | head -n 1)"
  echo "input:    $(basename "$IN_H"): ${SECS} s 1920x1080 30 fps testsrc2 + noise=alls=$NOISE:allf=t, H.264 High (libx264 veryfast CRF 23) + AAC-LC 128k stereo 48 kHz, $SIZE_H MiB ($(mbps "$IN_H" "$SECS") Mbit/s)"
  echo "          $(basename "$IN_M"): the same as MPEG-2 (q:v 2) + SMPTE 302M 24-bit stereo in MPEG-TS, $SIZE_M MiB ($(mbps "$IN_M" "$SECS") Mbit/s)"
  echo "load:     $LOAD_START before, $LOAD_END after (1, 5, 15 min; includes this benchmark)"
  echo "cores:    $(b_median <"$RES/avail") available to two busy threads (median of $(wc -l <"$RES/avail") 3 s probes, $(b_min <"$RES/avail")-$(b_max <"$RES/avail"); 2.00 = an idle machine)"
  echo "runs:     $REPS of each, interleaved, first alternating; medians [min-max]; each after a read of its input; took ${ELAPSED} s"
  echo
  echo "frame hashes, custos vs ffmpeg (rep 1): $FH_SAME"
  echo
  local cs cw ww wc sh
  read -r cs cw wc ww sh <<<"$(phase_med cmf)"
  local rcs rcw rwc rww rsh
  read -r rcs rcw rwc rww rsh <<<"$(phase_med cmr)"
  echo "Speed: ratio = ffmpeg s / custos s (above 1: custos is faster)"
  echo
  row "measure" "custos s" "peer s" "ratio" "target" "met?"
  row "---" "---:" "---:" "---:" "---" "---"
  speed_row "1 framehash vs ffmpeg -f framehash" cfh.wall ffh.wall "$T_FRAMEHASH"
  cpu_row "1 framehash vs ffmpeg -f framehash" cfh ffh
  speed_row "2 master remux + check vs ffmpeg -f framehash" cmr.wall ffh.wall "$T_REMUX"
  cpu_row "2 master remux + check vs ffmpeg -f framehash" cmr ffh
  speed_row "2 master remux + check vs ffmpeg -c copy" cmr.wall fcp.wall ""
  if [ "$rww" != n/a ]; then
    row "2 master remux: write phase alone vs ffmpeg -c copy" "$(printf '%.2f' "$rww")" "$(fmt_s fcp.wall)" \
      "$(b_div "$(med fcp.wall)" "$rww")" context -
  fi
  speed_row "3 FFV1 master + check vs ffmpeg FFV1+FLAC" cmf.wall fmf.wall "$T_FFV1"
  cpu_row "3 FFV1 master + check vs ffmpeg FFV1+FLAC" cmf fmf
  if [ "$ww" != n/a ]; then
    row "3 FFV1 master: write phase alone vs ffmpeg FFV1+FLAC" "$(printf '%.2f' "$ww")" "$(fmt_s fmf.wall)" \
      "$(b_div "$(med fmf.wall)" "$ww")" context -
  fi
  if have fdf.wall && have fmf.wall; then
    # ffmpeg's encode, then ffmpeg's decode of it: the ratio no master with a
    # whole decode check can beat on this machine.
    local lim
    lim=$(awk -v e="$(med fmf.wall)" -v d="$(med fdf.wall)" 'BEGIN {printf "%.2f", e + d}')
    row "3 FFV1 limit: ffmpeg encode + ffmpeg decode of it, vs the encode" "$lim" "$(fmt_s fmf.wall)" \
      "$(b_div "$(med fmf.wall)" "$lim")" limit -
    have cmf.wall && row "3 FFV1 master + check vs that limit" "$(fmt_s cmf.wall)" "$lim" \
      "$(b_div "$lim" "$(med cmf.wall)")" context -
  fi
  if have fdh.wall && have fmf.wall && have cmf.wall; then
    # The same proof with the CLI: encode, then frame hashes of the master
    # (the original's are made anyway, by the framehash job).
    local both
    both=$(awk -v e="$(med fmf.wall)" -v h="$(med fdh.wall)" 'BEGIN {printf "%.2f", e + h}')
    row "3 FFV1 master + check vs ffmpeg FFV1+FLAC, then ffmpeg -f framehash of it" "$(fmt_s cmf.wall)" "$both" \
      "$(b_div "$both" "$(med cmf.wall)")" context -
  fi
  speed_row "4 access copy vs ffmpeg libx264+aac" cac.wall fac.wall "$T_ACCESS"
  cpu_row "4 access copy vs ffmpeg libx264+aac" cac fac
  local r
  r=$(cpu_wall cmr)
  [ "$r" = n/a ] || row "5 master remux + check: CPU / wall (one job)" "$(fmt_s cmr.cpu) CPU" "$(fmt_s cmr.wall) wall" "$r" "≥ $T_CPU_MASTER" "$(verdict "$r" "$T_CPU_MASTER")"
  r=$(cpu_wall cmf)
  [ "$r" = n/a ] || row "5 master FFV1 + check: CPU / wall (one job)" "$(fmt_s cmf.cpu) CPU" "$(fmt_s cmf.wall) wall" "$r" "≥ $T_CPU_MASTER" "$(verdict "$r" "$T_CPU_MASTER")"
  if have par.wall && have seq.wall; then
    r=$(b_div "$(med seq.wall)" "$(med par.wall)")
    row "6 master + access: parallel vs sequential wall" "$(fmt_s par.wall) par" "$(fmt_s seq.wall) seq" "$r" "≥ $T_PAIR (par ≤ seq)" "$(verdict "$r" "$T_PAIR")"
  fi
  local k lbl in
  for k in cfh:framehash:H cmr:"master remux":H cmf:"master FFV1":M cac:access:H; do
    IFS=: read -r key lbl in <<<"$k"
    have "$key.rss" || continue
    local cut=n/a g=n/a v=n/a isz=$SIZE_H
    [ "$in" = M ] && isz=$SIZE_M
    if have "cut.$key.rss"; then
      cut=$(rss_mib "cut.$key.rss")
      g=$(b_div "$(b_max <"$RES/$key.rss")" "$(b_max <"$RES/cut.$key.rss")")
      v=$(verdict_le "$g" "$T_RSS_GROWTH")
    fi
    row "7 $lbl peak RSS, MiB: ${SECS} s vs 10 s cut (input $isz MiB)" "$(rss_mib "$key.rss")" "$cut (10 s)" "$g" "≤ $T_RSS_GROWTH" "$v"
  done
  echo
  echo "Check share of the masters (write phase ends when the process has written the whole master)"
  if [ "$rcs" != n/a ]; then
    printf '  remux master: write %.2f s (CPU/wall %.2f), check %.2f s = %.0f %% of the run (CPU/wall %.2f)\n' \
      "$rww" "$rwc" "$rcs" "$(awk -v x="$rsh" 'BEGIN {print x*100}')" "$rcw"
  fi
  if [ "$cs" != n/a ]; then
    printf '  FFV1 master:  write %.2f s (CPU/wall %.2f), check %.2f s = %.0f %% of the run (CPU/wall %.2f)\n' \
      "$ww" "$wc" "$cs" "$(awk -v x="$sh" 'BEGIN {print x*100}')" "$cw"
  fi
  echo
  echo "Every job: medians; peak RSS is the max over runs"
  echo
  printf '| %s | %s | %s | %s | %s | %s |\n' job "wall s [range]" "user s" "sys s" "CPU/wall" "peak RSS MiB"
  printf '| %s | %s | %s | %s | %s | %s |\n' --- ---: ---: ---: ---: ---:
  for k in cfh:"custos framehash" ffh:"ffmpeg -f framehash" cmr:"custos master, remux + check" \
    fcp:"ffmpeg -c copy" cmf:"custos master, FFV1 + FLAC + check" fmf:"ffmpeg FFV1 + FLAC" \
    fdf:"ffmpeg decodes its FFV1 + FLAC" fdh:"ffmpeg -f framehash of its FFV1 + FLAC" \
    cac:"custos access" fac:"ffmpeg access" cut.cfh:"custos framehash, 10 s" cut.cmr:"custos master remux, 10 s" \
    cut.cmf:"custos master FFV1, 10 s" cut.cac:"custos access, 10 s"; do
    IFS=: read -r key lbl <<<"$k"
    have "$key.wall" || continue
    printf '| %s | %s [%s] | %s | %s | %s | %s |\n' "$lbl" "$(fmt_s "$key.wall")" "$(range "$key.wall")" \
      "$(fmt_s "$key.user")" "$(fmt_s "$key.sys")" "$(cpu_wall "$key")" "$(rss_mib "$key.rss")"
  done
  if have par.wall; then
    printf '| %s | %s [%s] | | | | |\n' "master & access at once" "$(fmt_s par.wall)" "$(range par.wall)"
    printf '| %s | %s [%s] | | | | |\n' "master then access" "$(fmt_s seq.wall)" "$(range seq.wall)"
  fi
  echo
  local sz
  for sz in ffv1.size:"FFV1 master (custos)" ffv1ff.size:"FFV1 (ffmpeg)" access.size:"access copy (custos)" accessff.size:"access copy (ffmpeg)"; do
    IFS=: read -r key lbl <<<"$sz"
    have "$key" && printf 'output size, %s: %.1f MiB\n' "$lbl" "$(awk -v b="$(med "$key")" 'BEGIN {print b/1048576}')"
  done
  echo
  echo "Raw samples (seconds, KiB), in run order:"
  local f
  for f in "$RES"/*; do printf '  %-16s %s\n' "$(basename "$f")" "$(tr '\n' ' ' <"$f")"; done
}

mkdir -p "$(dirname "$RESULTS")"
summary | tee "$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
b_log "summary written to $RESULTS"
if [ "$STRICT" = 1 ] && grep -q '| MISSED |$' "$RESULTS"; then exit 3; fi
exit 0
