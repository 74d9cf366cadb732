#!/usr/bin/env bash
# bench/ledger: the ledger's figures next to this machine's synced-write
# limit, all measured in one run of one process (bench/ledger/ledger_bench.c):
#
#   1  the limit: synced single-writer RocksDB writes/s, fdatasync latency
#   2  durable appends/s through ledger_commit with 1, 8, 32, 64, 128 writer
#      threads (one "ingested" event per commit), group size, p50/p99 latency
#   3  the STH signer on and off, interleaved, at the highest concurrency
#   4  a 1,000,000-event ledger: build rate, peak RSS, ledger_sign_now, then
#      inclusion and consistency proofs (each verified) timed
#
# Unlike bench/ingest, this one links the project's libraries (archive,
# indexer, media, common) into a small C program: the ledger has no CLI
# or HTTP path that would isolate it. The libraries come from a Release
# build in build-bench/ (configured when missing, always re-made).
#
# This is not a test: it is never run by ctest or CI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

usage() {
  cat <<'EOF'
usage: bench/ledger/run.sh [options] [-- ledger_bench options]

  --quick           a smoke run: 1 s runs, 100,000 leaves, 500 proofs
  --results FILE    also write the output to FILE
                    (default bench/out/ledger-DATE.txt; bench/out/ is git-ignored)
  --keep            keep the data directory (default: removed at the end)
  --strict          exit 3 when a target is missed
  -h, --help        this text

Anything after -- goes to ledger_bench (see `--help` there), for example
  bench/ledger/run.sh -- --threads 1,8,64,256 --secs 5
Environment:
  BENCH_TMP=DIR     where the RocksDB directories go (default $TMPDIR or /tmp);
                    it must be on the disk you mean to measure (not tmpfs)
  BUILD_DIR=DIR     the Release build to link against (default ROOT/build-bench)
EOF
}

QUICK=0 KEEP=0 STRICT=0 RESULTS="" EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
  --quick) QUICK=1; shift ;;
  --results) RESULTS=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  --strict) STRICT=1; shift ;;
  -h | --help) usage; exit 0 ;;
  --) shift; EXTRA=("$@"); break ;;
  *) usage >&2; exit 2 ;;
  esac
done
STAMP=$(date -u +%Y%m%d-%H%M%S)
[ -n "$RESULTS" ] || RESULTS="$ROOT/bench/out/ledger-$STAMP.txt"

for tool in cmake cc pkg-config; do
  command -v "$tool" >/dev/null || b_die "$tool is needed"
done

# ---- build ------------------------------------------------------------------
BUILD=${BUILD_DIR:-$ROOT/build-bench}
mkdir -p "$BUILD"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  b_log "configuring a Release build in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >"$BUILD/cmake.log" 2>&1 ||
    b_die "cmake failed; see $BUILD/cmake.log"
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt" ||
  b_die "$BUILD is not a Release build"
b_log "building custos_archive and its dependencies in $BUILD"
cmake --build "$BUILD" --target custos_archive -j"$(nproc)" >"$BUILD/make-ledger.log" 2>&1 ||
  b_die "build failed; see $BUILD/make-ledger.log"

BIN=$BUILD/bench-ledger/ledger_bench
mkdir -p "$(dirname "$BIN")"
PKGS="libcrypto jansson libcurl libavformat libavcodec libavutil"
# -O2 like the Release libraries; the program defines fdatasync and fsync
# (to count synced writes), which the linker exports because librocksdb uses them.
# shellcheck disable=SC2046,SC2086 # $PKGS and pkg-config output are lists of words
cc -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
  -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter -Werror \
  -I"$ROOT/common" -I"$ROOT/indexer" -I"$ROOT/archive" -I"$ROOT/media" \
  $(pkg-config --cflags $PKGS) \
  -o "$BIN" "$HERE/ledger_bench.c" \
  "$BUILD/archive/libcustos_archive.a" "$BUILD/indexer/libcustos_indexer.a" \
  "$BUILD/media/libcustos_media.a" "$BUILD/common/libcustos_common.a" \
  -lrocksdb $(pkg-config --libs $PKGS) -lpthread -ldl -lm ||
  b_die "cannot compile ledger_bench.c"
[[ $(nm -D "$BIN") == *" T fdatasync"* ]] || b_die "fdatasync is not exported by $BIN: syncs would not be counted"

# ---- run --------------------------------------------------------------------
TMPBASE=${BENCH_TMP:-${TMPDIR:-/tmp}}
DATA=$(mktemp -d "$TMPBASE/custos-ledger-bench.XXXXXX")
# shellcheck disable=SC2317 # called by the trap
cleanup() { if [ "$KEEP" = 1 ]; then b_log "kept $DATA"; else rm -rf "$DATA"; fi; }
trap cleanup EXIT
FSTYPE=$(df --output=fstype "$DATA" | tail -n 1 | tr -d ' ')
[ "$FSTYPE" != tmpfs ] || b_die "$DATA is on tmpfs: fsync would cost nothing; set BENCH_TMP"
need=$((3 * 1024 * 1024 * 1024))
(($(b_free_bytes "$DATA") > need)) || b_die "less than 3 GiB free under $TMPBASE"

ARGS=(--dir "$DATA")
[ "$QUICK" = 0 ] || ARGS+=(--secs 1 --base-secs 1 --signer-reps 1 --leaves 100000 --proofs 500 --sign-reps 5)
[ "$STRICT" = 0 ] || ARGS+=(--strict)
ARGS+=("${EXTRA[@]}")

mkdir -p "$(dirname "$RESULTS")"
{
  echo "bench/ledger/run.sh $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "source: $(b_tree_version "$ROOT"), Release libraries in $BUILD"
  echo "machine: $(b_machine)"
  echo "data: $DATA ($FSTYPE on $(df --output=source "$DATA" | tail -n 1))"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "ledger_bench ${ARGS[*]}"
  echo
} | tee "$RESULTS.tmp"
b_log "running; about a minute"
rc=0
start=$(b_now)
"$BIN" "${ARGS[@]}" | tee -a "$RESULTS.tmp" || rc=$?
{
  echo
  echo "wall time $(awk -v a="$start" -v b="$(b_now)" 'BEGIN {printf "%.0f", b - a}') s," \
    "load average after: $(cut -d' ' -f1-3 /proc/loadavg)," \
    "data at the end: $(du -sh "$DATA" | cut -f1)"
} | tee -a "$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
b_log "output written to $RESULTS"
exit "$rc"
