#!/usr/bin/env bash
# bench/export: how fast Custos writes an export bag of a large case, next
# to copying the same files with cp -r, and how much memory the server uses
# while it does.
#
#   A  custos  POST /v1/cases/{id}/exports of a case of --files recordings
#              totalling --size, timed from the request to the export's
#              "done": every object read once, hashed with SHA-256 (checked
#              against its record) and SHA-512, copied into the bag and
#              synced, the custody files, manifests and reports written,
#              the bag renamed into place, the "exported" events committed
#   B  cp -r   of the same object files into a fresh directory, then sync
#              (the bag is durable when the export says done, so the copy
#              is timed until it is durable too); cp -r without the sync is
#              reported beside it
#
# Target (issue 6): A >= 0.7 x B, with the server's peak RSS bounded (it
# must not grow with the size of the case). Runs are interleaved (A B A B
# ...) and each figure is the median of --reps runs; the server is
# restarted before each export, so its VmHWM is that export's. With
# --cold (root) the page cache is dropped before each run.
#
# Disk: the objects, one bag and one copy at a time: about 3 x --size.
# This is not a test: it is never run by ctest or CI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

usage() {
  cat <<'EOF'
usage: bench/export/run.sh [options]

  --size SIZE     the case's total bytes (default 10G)
  --files N       recordings it is split into (default 5)
  --reps N        runs of each measurement; medians are reported (default 3)
  --quick         a smoke run: 1 rep, 512M in 2 files
  --cold          drop the page cache before each run (needs root)
  --results FILE  also write the summary to FILE (default bench/out/export-DATE.txt)
  --strict        exit 3 when the target is missed
  -h, --help      this text

Environment: CUSTOS=PATH (the binary; default a Release build in build-bench),
BENCH_TMP=DIR (where the server home and the copies go; default $TMPDIR or /tmp).
EOF
}

T_VS_CP=0.70       # export >= 0.7 x (cp -r + sync)
T_RSS_MIB=128      # server peak RSS during an export

SIZE=10G FILES=5 REPS=3 COLD=0 STRICT=0 RESULTS=""
while [ $# -gt 0 ]; do
  case $1 in
  --size) SIZE=$2; shift 2 ;;
  --files) FILES=$2; shift 2 ;;
  --reps) REPS=$2; shift 2 ;;
  --quick) SIZE=512M FILES=2 REPS=1; shift ;;
  --cold) COLD=1; shift ;;
  --results) RESULTS=$2; shift 2 ;;
  --strict) STRICT=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
  esac
done
SIZE=$(b_size "$SIZE")
[[ $REPS =~ ^[1-9][0-9]*$ && $FILES =~ ^[1-9][0-9]*$ ]] || b_die "--reps and --files must be positive integers"
RESULTS=${RESULTS:-$ROOT/bench/out/export-$(date +%Y%m%d-%H%M%S).txt}
mkdir -p "$(dirname "$RESULTS")"

BIN=$(b_custos_bin "$ROOT")
W=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/custos-bench-export.XXXXXX")
HOMED="$W/var"
SRV=""
cleanup() {
  [ -n "$SRV" ] && kill -TERM "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
need=$((3 * SIZE + (1 << 30)))
[ "$(b_free_bytes "$(dirname "$W")")" -gt "$need" ] || b_die "need $((need >> 30)) GiB free under $(dirname "$W")"

start() {
  rm -f "$W/port"
  "$BIN" serve --home "$HOMED" --listen 127.0.0.1:0 --port-file "$W/port" --scrub-rate 0 \
    >>"$W/server.log" 2>&1 &
  SRV=$!
  b_wait_file "$W/port" "$SRV" 20 || b_die "the server did not start: $(tail -5 "$W/server.log")"
  URL="http://127.0.0.1:$(cat "$W/port")"
  TOK=$(cat "$HOMED/admin.token")
}
stop() {
  kill -TERM "$SRV"
  wait "$SRV" || b_die "the server did not stop cleanly"
  SRV=""
}
api() { curl -fsS -H "Authorization: Bearer $TOK" "$@"; }
drop_caches() {
  [ "$COLD" = 1 ] || return 0
  sync
  echo 3 | b_as_root tee /proc/sys/vm/drop_caches >/dev/null
}

# ---- the case ---------------------------------------------------------------
b_log "making a case of $FILES files, $SIZE bytes in all, in $W"
start
api -X POST -H 'Content-Type: application/json' -d '{"id":"BENCH-EXPORT","title":"bench"}' "$URL/v1/cases" >/dev/null
per=$((SIZE / FILES))
IDS=() OBJ_FILES=()
for i in $(seq 1 "$FILES"); do
  # incompressible bytes, fast: AES-CTR of zeros
  head -c "$per" /dev/zero | openssl enc -aes-128-ctr -nosalt -pass "pass:custos-$i" -pbkdf2 2>/dev/null \
    >"$W/rec$i.bin"
  line=$(CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$TOK" "$BIN" push --state-dir "$W/push" --device "bench-$i" \
    "$W/rec$i.bin") || b_die "upload $i failed"
  read -r id sha _ <<<"$line"
  IDS+=("$id")
  OBJ_FILES+=("$HOMED/objects/sha256/${sha:0:2}/${sha:2:2}/$sha")
  rm -f "$W/rec$i.bin"
  api -X POST "$URL/v1/cases/BENCH-EXPORT/evidence/$id" >/dev/null
done
for id in "${IDS[@]}"; do # each original's time-stamp, which the bag carries
  for _ in $(seq 1 600); do
    api -o /dev/null "$URL/v1/evidence/$id/timestamp" 2>/dev/null && break
    sleep 0.1
  done
done
stop
for f in "${OBJ_FILES[@]}"; do [ -f "$f" ] || b_die "no object $f"; done

# ---- interleaved runs ---------------------------------------------------------
A=() B=() B0=() RSS=()
for r in $(seq 1 "$REPS"); do
  drop_caches
  start
  t0=$(b_now)
  id=$(api -X POST -H 'Content-Type: application/json' -d '{}' "$URL/v1/cases/BENCH-EXPORT/exports" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  while :; do
    st=$(api "$URL/v1/exports/$id/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$st" = done ] && break
    [ "$st" = failed ] && b_die "the export failed: $(api "$URL/v1/exports/$id/status")"
    sleep 0.05
  done
  t1=$(b_now)
  RSS+=("$(b_vmhwm "$SRV")")
  stop
  rm -rf "${HOMED:?}/exports/$id"
  A+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  b_log "run $r: export ${A[-1]} s, peak RSS ${RSS[-1]} KiB"

  drop_caches
  mkdir "$W/copy"
  t0=$(b_now)
  cp -r "${OBJ_FILES[@]}" "$W/copy/"
  t1=$(b_now)
  sync
  t2=$(b_now)
  rm -rf "$W/copy"
  B0+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  B+=("$(awk -v a="$t0" -v b="$t2" 'BEGIN {print b - a}')")
  b_log "run $r: cp -r ${B0[-1]} s, with sync ${B[-1]} s"
done

a=$(printf '%s\n' "${A[@]}" | b_median)
b=$(printf '%s\n' "${B[@]}" | b_median)
b0=$(printf '%s\n' "${B0[@]}" | b_median)
rss=$(printf '%s\n' "${RSS[@]}" | b_max)
ratio=$(b_div "$b" "$a")
{
  echo "bench/export $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(b_machine)"
  echo "tree: $(b_tree_version "$ROOT"); binary: $BIN"
  echo "case: $FILES files, $SIZE bytes; $REPS runs (medians); cache: $([ "$COLD" = 1 ] && echo cold || echo warm)"
  echo "export:          $a s  ($(b_mb "$(b_div "$SIZE" "$a" 0)") MB/s), server peak RSS $((rss / 1024)) MiB"
  echo "cp -r + sync:    $b s  ($(b_mb "$(b_div "$SIZE" "$b" 0)") MB/s)"
  echo "cp -r (no sync): $b0 s ($(b_mb "$(b_div "$SIZE" "$b0" 0)") MB/s)"
  echo "export speed / (cp -r + sync) speed: $ratio (target >= $T_VS_CP)"
} | tee "$RESULTS"
miss=0
awk -v r="$ratio" -v t="$T_VS_CP" 'BEGIN {exit !(r + 0 < t + 0)}' && miss=1
[ $((rss / 1024)) -gt "$T_RSS_MIB" ] && miss=1
[ "$STRICT" = 1 ] && [ "$miss" = 1 ] && exit 3
exit 0
