#!/usr/bin/env bash
# bench/ingest: how fast Custos takes in an upload, next to the physical
# limits of this machine and to two peers, all measured in the same run.
#
#   A  custos  tus PATCH of one file with curl: hashed, written O_DIRECT,
#              fsynced, committed write-once and indexed
#   B  nginx   WebDAV PUT of the same file on loopback: written to the page
#              cache, no hash, no fsync (the throughput ceiling for HTTP)
#   C  @tus/server with @tus/file-store (node): the tus peer
#
# Runs are interleaved (A B C A B C ...) so that a noisy neighbour on this
# shared 2-core VM hurts every contender alike, and each figure is the
# median of --reps runs. Every Custos run gets a fresh home and a fresh
# server process, so nothing is deduplicated and the peak RSS (VmHWM) is
# that run's own. See bench/ingest/README.md and docs/BENCHMARKS.md.
#
# This is not a test: it is never run by ctest or CI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

usage() {
  cat <<'EOF'
usage: bench/ingest/run.sh [options]

  --reps N          runs of each measurement; medians are reported (default 3)
  --size SIZE       the single-upload file (default 2G)
  --push-size SIZE  the file sent with `custos push` (default 1G)
  --conc N          concurrent uploads (default 32)
  --conc-size SIZE  size of each concurrent upload (default 64M)
  --quick           a smoke run: 1 rep, 256M, 128M, 8 x 16M
  --skip LIST       comma-separated parts to leave out: limits,single,push,conc,tus
  --results FILE    also write the summary to FILE
                    (default bench/out/ingest-DATE.txt; bench/out/ is git-ignored)
  --cool SECONDS    pause before each run that writes through the page cache
                    (nginx, @tus/server, buffered dd), so that it gets fresh
                    pages like the others did (default 8, or 0 with --quick)
  --baseline PATH   also measure this second custos binary (say, a build of the
                    previous commit), interleaved with the first, and print
                    their ratio: for judging a change on this noisy machine
  --strict          exit 3 when a target is missed
  -h, --help        this text

Sizes take IEC suffixes (K, M, G). Environment:
  CUSTOS=PATH       the custos binary to measure (default: build-bench/cli/custos,
                    configured as Release and built when missing)
  BENCH_TMP=DIR     where the input files and server homes go (default $TMPDIR or
                    /tmp); it must be on the disk you mean to measure
EOF
}

# ---- targets (from the issue) ------------------------------------------------
T_VS_NGINX=0.90    # custos >= 0.9 x nginx PUT
T_VS_TUS=1.20      # custos >= 1.2 x @tus/server
T_RSS_ONE_MIB=64   # server peak RSS for any single upload
T_RSS_CONC_MIB=256 # server peak RSS for the concurrent uploads

REPS=3 SIZE=2G PUSH_SIZE=1G CONC=32 CONC_SIZE=64M STRICT=0 RESULTS="" SKIP="" BASELINE="" COOL="" QUICK=0
while [ $# -gt 0 ]; do
  case $1 in
  --reps) REPS=$2; shift 2 ;;
  --size) SIZE=$2; shift 2 ;;
  --push-size) PUSH_SIZE=$2; shift 2 ;;
  --conc) CONC=$2; shift 2 ;;
  --conc-size) CONC_SIZE=$2; shift 2 ;;
  --quick) REPS=1 SIZE=256M PUSH_SIZE=128M CONC=8 CONC_SIZE=16M QUICK=1; shift ;;
  --skip) SKIP=",$2,"; shift 2 ;;
  --results) RESULTS=$2; shift 2 ;;
  --baseline) BASELINE=$2; shift 2 ;;
  --cool) COOL=$2; shift 2 ;;
  --strict) STRICT=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
  esac
done
SIZE=$(b_size "$SIZE") PUSH_SIZE=$(b_size "$PUSH_SIZE") CONC_SIZE=$(b_size "$CONC_SIZE")
[[ $REPS =~ ^[1-9][0-9]*$ && $CONC =~ ^[1-9][0-9]*$ ]] || b_die "--reps and --conc must be positive integers"
((SIZE % 1048576 == 0 && PUSH_SIZE % 1048576 == 0 && CONC_SIZE % 1048576 == 0)) ||
  b_die "sizes must be whole MiB"
((PUSH_SIZE <= SIZE)) || b_die "--push-size must not exceed --size"
[ -n "$COOL" ] || COOL=$((QUICK ? 0 : 8))
[[ $COOL =~ ^[0-9]+$ ]] || b_die "--cool takes whole seconds"
skipped() { [[ $SKIP == *",$1,"* ]]; }
STAMP=$(date -u +%Y%m%d-%H%M%S)
[ -n "$RESULTS" ] || RESULTS="$ROOT/bench/out/ingest-$STAMP.txt"

# ---- tools and peers --------------------------------------------------------
for tool in curl openssl dd numfmt awk base64 split; do
  command -v "$tool" >/dev/null || b_die "$tool is needed"
done
CUSTOS_NOTE=""
[ -n "${CUSTOS:-}" ] || CUSTOS_NOTE=" (Release, source at $(b_tree_version "$ROOT"))"
CUSTOS=$(b_custos_bin "$ROOT")
CUSTOS=$(realpath "$CUSTOS")
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE" ] || b_die "--baseline $BASELINE is not an executable"
  BASELINE=$(realpath "$BASELINE")
fi
CBIN=$CUSTOS # the binary custos_up starts

if ! command -v nginx >/dev/null || ! nginx -V 2>&1 | grep -q http_dav_module; then
  b_apt_install nginx-light
fi
NGINX=$(command -v nginx) || b_die "nginx is not available"

TUS_OK=1 TUS_WHY=""
if skipped tus; then
  TUS_OK=0 TUS_WHY="skipped (--skip tus)"
else
  command -v node >/dev/null || (b_apt_install nodejs npm) || true
  # @tus/server 2.x needs Node >= 20.19 (package.json pins the versions).
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null; then
    TUS_OK=0 TUS_WHY="Node $(node --version 2>/dev/null || echo missing) is older than 20.19"
  elif [ ! -f "$HERE/node_modules/@tus/server/package.json" ] ||
    [ ! -f "$HERE/node_modules/@tus/file-store/package.json" ]; then
    b_log "installing @tus/server and @tus/file-store into $HERE/node_modules"
    if ! (cd "$HERE" && { npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
      npm install --no-audit --no-fund --loglevel=error >/dev/null; }); then
      TUS_OK=0 TUS_WHY="npm install of @tus/server failed"
    fi
  fi
fi

# socat gives the raw loopback TCP figure (no HTTP at all); optional.
SOCAT_OK=0
if ! skipped limits; then
  command -v socat >/dev/null || (b_apt_install socat) || true
  command -v socat >/dev/null && SOCAT_OK=1
fi

PUSH_OK=0
if ! skipped push; then
  if PUSH_HELP=$("$CUSTOS" push --help 2>&1) && grep -q -- '--server' <<<"$PUSH_HELP"; then
    PUSH_OK=1
  fi
fi

# ---- scratch space ----------------------------------------------------------
TMPBASE=${BENCH_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$TMPBASE"
T=$(mktemp -d "$TMPBASE/custos-bench.XXXXXX")
RES="$T/results"
mkdir -p "$RES"
PIDS=() # servers we started and have not stopped yet
pids_drop() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local rc=$?
  b_stop_and_show_logs "$rc" "$T"
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CONC_TOTAL=$((CONC * CONC_SIZE))
BIGGEST=$((SIZE > CONC_TOTAL ? SIZE : CONC_TOTAL))
# input + push file + concurrent parts + one stored copy + 1 GiB slack
NEED=$((SIZE + PUSH_SIZE + CONC_TOTAL + BIGGEST + (1 << 30)))
FREE=$(b_free_bytes "$T")
b_log "scratch $T: $(numfmt --to=iec "$FREE") free, $(numfmt --to=iec "$NEED") needed"
((FREE >= NEED)) || b_die "not enough free disk in $TMPBASE (set BENCH_TMP)"

# ---- inputs -----------------------------------------------------------------
IN="$T/in.bin"
b_log "generating $(numfmt --to=iec "$SIZE") of random input"
openssl enc -aes-128-ctr -nosalt -K "$(openssl rand -hex 16)" -iv "$(openssl rand -hex 16)" \
  -in /dev/zero 2>/dev/null | head -c "$SIZE" >"$IN" || true
[ "$(stat -c %s "$IN")" = "$SIZE" ] || b_die "could not generate the input"
IN_SHA=$(openssl dgst -sha256 -r "$IN" | cut -d' ' -f1)
if [ "$PUSH_OK" = 1 ]; then
  PUSH_IN="$T/push.bin"
  head -c "$PUSH_SIZE" "$IN" >"$PUSH_IN"
  PUSH_SHA=$(openssl dgst -sha256 -r "$PUSH_IN" | cut -d' ' -f1)
fi
if ! skipped conc; then
  mkdir -p "$T/conc"
  # Distinct content per upload, so no two are the same object.
  openssl enc -aes-128-ctr -nosalt -K "$(openssl rand -hex 16)" -iv "$(openssl rand -hex 16)" \
    -in /dev/zero 2>/dev/null | head -c "$CONC_TOTAL" | split -b "$CONC_SIZE" -d -a 3 - "$T/conc/part." || true
  [ "$(find "$T/conc" -name 'part.*' | wc -l)" = "$CONC" ] || b_die "could not split the concurrent inputs"
fi

# Let the inputs' writeback finish now rather than during the first run.
sync

# ---- helpers for the runs ---------------------------------------------------
b64() { printf '%s' "$1" | base64 -w0; }
header() { grep -i "^$1:" "$2" | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
settle() { sync; sleep 0.5; }
# On this VM, page-cache pages freed a few seconds ago are handed back to the
# host (free page reporting), and touching them again costs a host fault:
# a buffered 2 GiB write runs at ~0.5 GB/s into such "fresh" pages and at
# 2-3 GB/s into pages freed a moment ago. Without a pause, whoever writes
# right after nginx (which frees 2 GiB) would get the fast case. So every
# contender that writes through the page cache waits first, and all of them
# see fresh pages, as a server that is not already busy would.
cool() { if [ "$COOL" != 0 ]; then sleep "$COOL"; fi; }
record() { echo "$2" >>"$RES/$1"; } # METRIC VALUE
# Curl options shared by every upload: one request, streamed from the file
# (-T never loads it into memory), no "Expect: 100-continue" round trip.
CURL=(curl -sS -o /dev/null -H 'Expect:')
CURL_W='%{http_code} %{time_total}'

# ---- custos -----------------------------------------------------------------
C_PID="" C_URL="" C_TOK="" C_HOME="$T/custos-home" C_TICKS0=0
custos_up() {
  rm -rf "$C_HOME" "$T/custos.port"
  "$CBIN" serve --home "$C_HOME" --listen 127.0.0.1:0 --port-file "$T/custos.port" \
    >>"$T/custos.log" 2>&1 &
  C_PID=$!
  PIDS+=("$C_PID")
  b_wait_file "$T/custos.port" "$C_PID" 20 || b_die "custos did not start (see log)"
  C_URL="http://127.0.0.1:$(cat "$T/custos.port")"
  C_TOK=$("$CBIN" token create --server "$C_URL" --token "$(cat "$C_HOME/admin.token")" \
    --role recorder --device cam1 2>>"$T/custos.log") || b_die "cannot create a recorder token"
  C_TICKS0=$(b_cpu_ticks "$C_PID")
}
custos_down() {
  kill -TERM "$C_PID"
  local rc=0
  wait "$C_PID" || rc=$?
  [ "$rc" = 0 ] || b_log "custos exited with status $rc"
  pids_drop "$C_PID"
  C_PID=""
  rm -rf "$C_HOME"
}
custos_create() { # LENGTH NAME -> the upload URL
  local h="$T/create.h"
  "${CURL[@]}" -D "$h" -X POST -H "Authorization: Bearer $C_TOK" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Length: $1" -H "Upload-Metadata: device_id $(b64 cam1),filename $(b64 "$2")" \
    "$C_URL/v1/uploads"
  header Location "$h"
}
custos_patch() { # URL FILE HEADERS_OUT -> "code seconds"
  "${CURL[@]}" -D "$3" -w "$CURL_W" -X PATCH -T "$2" -H "Authorization: Bearer $C_TOK" \
    -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' "$1"
}
TICK=$(getconf CLK_TCK)
cpu_since() { awk -v a="$1" -v b="$2" -v t="$TICK" 'BEGIN {printf "%.2f\n", (b-a)/t}'; }

# ---- nginx (started once; it keeps no state between runs) -------------------
NGX="$T/nginx"
mkdir -p "$NGX/logs" "$NGX/tmp" "$NGX/root/put"
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
  client_body_temp_path $NGX/tmp;
  proxy_temp_path $NGX/tmp;
  fastcgi_temp_path $NGX/tmp;
  uwsgi_temp_path $NGX/tmp;
  scgi_temp_path $NGX/tmp;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:__PORT__;
    # The peer: the body is written to a file (page cache), then renamed.
    location /put/ { root $NGX/root; dav_methods PUT DELETE; }
    # The loopback limit: the body is read and thrown away.
    location /discard/ { return 204; }
  }
}
EOF
} >"$NGX/nginx.conf.in"
# A port nobody listens on now (nginx cannot be told to pick one and say
# which); a race with another program is retried below.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return; }
  done
  b_die "no free loopback port found"
}
NGX_PID=""
for _ in 1 2 3 4 5; do
  port=$(free_port)
  sed "s/__PORT__/$port/" "$NGX/nginx.conf.in" >"$NGX/nginx.conf"
  "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" >>"$T/nginx.log" 2>&1 &
  NGX_PID=$!
  PIDS+=("$NGX_PID")
  for _ in $(seq 1 40); do
    curl -s -o /dev/null "http://127.0.0.1:$port/discard/" && break
    kill -0 "$NGX_PID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$NGX_PID" 2>/dev/null; then break; fi
  wait "$NGX_PID" 2>/dev/null || true
  pids_drop "$NGX_PID"
  NGX_PID=""
done
[ -n "$NGX_PID" ] || b_die "nginx did not start (see $NGX/logs/error.log)"
NGX_URL="http://127.0.0.1:$port"
nginx_workers() { cat "/proc/$NGX_PID/task/$NGX_PID/children" 2>/dev/null; }
nginx_ticks() {
  local s=0 p
  for p in $(nginx_workers); do s=$((s + $(b_cpu_ticks "$p"))); done
  echo "$s"
}
nginx_put() { # FILE NAME -> "code seconds"
  "${CURL[@]}" -w "$CURL_W" -T "$1" "$NGX_URL/put/$2"
}

# ---- @tus/server ------------------------------------------------------------
TUS_PID="" TUS_URL="" TUS_TICKS0=0
tus_up() {
  rm -rf "$T/tus-store" "$T/tus.port"
  mkdir -p "$T/tus-store"
  (cd "$HERE" && exec node tus-server.mjs "$T/tus-store" "$T/tus.port") >>"$T/tus.log" 2>&1 &
  TUS_PID=$!
  PIDS+=("$TUS_PID")
  b_wait_file "$T/tus.port" "$TUS_PID" 20 || b_die "@tus/server did not start (see log)"
  TUS_URL="http://127.0.0.1:$(cat "$T/tus.port")/files"
  TUS_TICKS0=$(b_cpu_ticks "$TUS_PID")
}
tus_down() {
  kill -TERM "$TUS_PID"
  wait "$TUS_PID" 2>/dev/null || true
  pids_drop "$TUS_PID"
  TUS_PID=""
  rm -rf "$T/tus-store"
}
tus_create() { # LENGTH NAME -> the upload URL
  local h="$T/tcreate.h"
  "${CURL[@]}" -D "$h" -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $1" \
    -H "Upload-Metadata: filename $(b64 "$2")" "$TUS_URL"
  header Location "$h"
}
tus_patch() { # URL FILE HEADERS_OUT -> "code seconds"
  "${CURL[@]}" -D "$3" -w "$CURL_W" -X PATCH -T "$2" -H 'Tus-Resumable: 1.0.0' \
    -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' "$1"
}

# ---- one measurement each ---------------------------------------------------
# Each records its figures under $RES and leaves a line for the log in MSG.
rate() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f\n", b/s}'; }

m_custos_single() { # FILE SIZE SHA TAG
  local out code secs r rss cpu
  custos_up
  local loc
  loc=$(custos_create "$2" "$(basename "$1")")
  [ -n "$loc" ] || b_die "custos: POST /v1/uploads gave no Location"
  out=$(custos_patch "$loc" "$1" "$T/patch.h")
  read -r code secs <<<"$out"
  [ "$code" = 204 ] || b_die "custos PATCH answered $code"
  [ "$(header Custos-SHA256 "$T/patch.h")" = "$3" ] || b_die "custos reported a different SHA-256"
  [ -n "$(header Custos-Evidence-Id "$T/patch.h")" ] || b_die "custos did not commit the upload"
  r=$(rate "$2" "$secs")
  rss=$(b_vmhwm "$C_PID")
  cpu=$(cpu_since "$C_TICKS0" "$(b_cpu_ticks "$C_PID")")
  custos_down
  record "$4.rate" "$r"
  record "$4.rss" "$rss"
  record "$4.cpu" "$cpu"
  MSG="$(b_mb "$r") MB/s, peak RSS $((rss / 1024)) MiB, server CPU ${cpu} s"
}

m_nginx_single() {
  local out code secs r t0 cpu
  cool
  t0=$(nginx_ticks)
  out=$(nginx_put "$IN" single.bin)
  read -r code secs <<<"$out"
  [ "$code" = 201 ] || [ "$code" = 204 ] || b_die "nginx PUT answered $code"
  cpu=$(cpu_since "$t0" "$(nginx_ticks)")
  # Removing the file at once drops its dirty pages, so their writeback does
  # not land on the next contender's run.
  rm -f "$NGX/root/put/single.bin"
  r=$(rate "$SIZE" "$secs")
  record nginx.rate "$r"
  record nginx.cpu "$cpu"
  MSG="$(b_mb "$r") MB/s, worker CPU ${cpu} s"
}

m_tus_single() {
  local out code secs r rss loc cpu
  tus_up
  loc=$(tus_create "$SIZE" in.bin)
  [ -n "$loc" ] || b_die "@tus/server: POST gave no Location"
  cool
  out=$(tus_patch "$loc" "$IN" "$T/tpatch.h")
  read -r code secs <<<"$out"
  [ "$code" = 204 ] || b_die "@tus/server PATCH answered $code"
  [ "$(header Upload-Offset "$T/tpatch.h")" = "$SIZE" ] || b_die "@tus/server did not take the whole file"
  r=$(rate "$SIZE" "$secs")
  rss=$(b_vmhwm "$TUS_PID")
  cpu=$(cpu_since "$TUS_TICKS0" "$(b_cpu_ticks "$TUS_PID")")
  tus_down
  record tus.rate "$r"
  record tus.rss "$rss"
  record tus.cpu "$cpu"
  MSG="$(b_mb "$r") MB/s, peak RSS $((rss / 1024)) MiB, server CPU ${cpu} s"
}

m_sha() {
  local r
  r=$(openssl speed -evp sha256 -bytes 1048576 -seconds 2 2>/dev/null |
    awk '$1 == "sha256" {v=$NF} END {sub(/k$/, "", v); printf "%.0f\n", v*1000}')
  [[ -n $r && $r != 0 ]] || b_die "cannot parse openssl speed"
  record sha.rate "$r"
  MSG="$(b_mb "$r") MB/s"
}

m_dd() { # direct|buffered|buffered-fsync
  local t0 t1 r flags=(oflag=direct conv=fsync)
  [ "$1" = buffered ] && flags=()
  [ "$1" = buffered-fsync ] && flags=(conv=fsync)
  [ "$1" = direct ] || cool
  t0=$(b_now)
  dd if="$IN" of="$T/dd.out" bs=1M count=$((SIZE / 1048576)) iflag=fullblock "${flags[@]}" status=none
  t1=$(b_now)
  rm -f "$T/dd.out"
  r=$(awk -v b="$SIZE" -v a="$t0" -v c="$t1" 'BEGIN {printf "%.0f\n", b/(c-a)}')
  record "dd-$1.rate" "$r"
  MSG="$(b_mb "$r") MB/s"
}

m_loopback() {
  local out code secs r
  out=$("${CURL[@]}" -w "$CURL_W" -T "$IN" "$NGX_URL/discard/x")
  read -r code secs <<<"$out"
  [ "$code" = 204 ] || b_die "nginx discard answered $code"
  r=$(rate "$SIZE" "$secs")
  record loop.rate "$r"
  MSG="$(b_mb "$r") MB/s"
}

# Raw TCP over loopback: socat to socat, 1 MiB reads and writes, timed
# until the receiver has read the last byte.
m_socat() {
  local port t0 t1 r rpid
  port=$(free_port)
  socat -u -b 1048576 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" OPEN:/dev/null 2>>"$T/socat.log" &
  rpid=$!
  for _ in $(seq 1 40); do
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && break
    sleep 0.05
  done
  t0=$(b_now)
  socat -u -b 1048576 "FILE:$IN" "TCP:127.0.0.1:$port" 2>>"$T/socat.log" || b_die "socat send failed"
  wait "$rpid" || b_die "socat receive failed"
  t1=$(b_now)
  r=$(awk -v b="$SIZE" -v a="$t0" -v c="$t1" 'BEGIN {printf "%.0f\n", b/(c-a)}')
  record socat.rate "$r"
  MSG="$(b_mb "$r") MB/s"
}

m_custos_push() {
  local t0 t1 r rss cpu
  custos_up
  t0=$(b_now)
  local extra=()
  # Keep push's resume state out of the user's home.
  grep -q -- '--state-dir' <<<"$PUSH_HELP" && extra=(--state-dir "$T/push-state")
  "$CUSTOS" push --server "$C_URL" --token "$C_TOK" --device cam1 "${extra[@]}" "$PUSH_IN" >>"$T/push.log" 2>&1 ||
    b_die "custos push failed (see push.log)"
  t1=$(b_now)
  grep -q "$PUSH_SHA" "$T/push.log" ||
    b_log "note: custos push did not print the file's SHA-256; not checked"
  r=$(awk -v b="$PUSH_SIZE" -v a="$t0" -v c="$t1" 'BEGIN {printf "%.0f\n", b/(c-a)}')
  rss=$(b_vmhwm "$C_PID")
  cpu=$(cpu_since "$C_TICKS0" "$(b_cpu_ticks "$C_PID")")
  custos_down
  record push.rate "$r"
  record push.rss "$rss"
  record push.cpu "$cpu"
  MSG="$(b_mb "$r") MB/s, peak RSS $((rss / 1024)) MiB, server CPU ${cpu} s"
}

# Starts every upload at once and waits for all; the figure is the total
# bytes over the wall time from the first start to the last finish.
conc_finish() { # TAG t0 -> checks the codes, prints the aggregate rate
  local t1 bad
  t1=$(b_now)
  bad=$(cat "$T"/cres.* | awk -v ok="$3" '$1 != ok' | wc -l)
  [ "$bad" = 0 ] || b_die "$1: $bad of $CONC concurrent uploads failed ($(cat "$T"/cres.* | cut -d' ' -f1 | sort | uniq -c | tr '\n' ' '))"
  rm -f "$T"/cres.*
  awk -v b="$CONC_TOTAL" -v a="$2" -v c="$t1" 'BEGIN {printf "%.0f\n", b/(c-a)}'
}

m_custos_conc() { # [TAG]
  local i locs=() t0 r rss cpu tag=${1:-cconc}
  custos_up
  for ((i = 0; i < CONC; i++)); do locs+=("$(custos_create "$CONC_SIZE" "part$i.bin")"); done
  t0=$(b_now)
  for ((i = 0; i < CONC; i++)); do
    custos_patch "${locs[$i]}" "$(printf '%s/conc/part.%03d' "$T" "$i")" "$T/cpatch.$i.h" >"$T/cres.$i" &
  done
  wait_uploads
  r=$(conc_finish custos "$t0" 204)
  rss=$(b_vmhwm "$C_PID")
  cpu=$(cpu_since "$C_TICKS0" "$(b_cpu_ticks "$C_PID")")
  [ "$(grep -il '^Custos-Evidence-Id:' "$T"/cpatch.*.h | wc -l)" = "$CONC" ] ||
    b_die "custos did not commit every concurrent upload"
  rm -f "$T"/cpatch.*.h
  custos_down
  record "$tag.rate" "$r"
  record "$tag.rss" "$rss"
  record "$tag.cpu" "$cpu"
  MSG="$(b_mb "$r") MB/s aggregate, peak RSS $((rss / 1024)) MiB, server CPU ${cpu} s"
}

m_nginx_conc() {
  local i t0 r cpu c0
  cool
  c0=$(nginx_ticks)
  t0=$(b_now)
  for ((i = 0; i < CONC; i++)); do
    nginx_put "$(printf '%s/conc/part.%03d' "$T" "$i")" "c$i.bin" >"$T/cres.$i" &
  done
  wait_uploads
  r=$(conc_finish nginx "$t0" 201)
  cpu=$(cpu_since "$c0" "$(nginx_ticks)")
  rm -f "$NGX"/root/put/c*.bin
  record nconc.rate "$r"
  record nconc.cpu "$cpu"
  MSG="$(b_mb "$r") MB/s aggregate, worker CPU ${cpu} s"
}

m_tus_conc() {
  local i locs=() t0 r rss cpu
  tus_up
  for ((i = 0; i < CONC; i++)); do locs+=("$(tus_create "$CONC_SIZE" "part$i.bin")"); done
  cool
  t0=$(b_now)
  for ((i = 0; i < CONC; i++)); do
    tus_patch "${locs[$i]}" "$(printf '%s/conc/part.%03d' "$T" "$i")" /dev/null >"$T/cres.$i" &
  done
  wait_uploads
  r=$(conc_finish @tus/server "$t0" 204)
  rss=$(b_vmhwm "$TUS_PID")
  cpu=$(cpu_since "$TUS_TICKS0" "$(b_cpu_ticks "$TUS_PID")")
  tus_down
  record tconc.rate "$r"
  record tconc.rss "$rss"
  record tconc.cpu "$cpu"
  MSG="$(b_mb "$r") MB/s aggregate, peak RSS $((rss / 1024)) MiB, server CPU ${cpu} s"
}

# Waits for the background curls only (the servers are children too).
wait_uploads() {
  local j
  for j in $(jobs -p); do
    case " ${PIDS[*]-} " in *" $j "*) continue ;; esac
    wait "$j" || true
  done
}

# Runs one measurement in this shell (so its servers are ours to clean up)
# and logs the line it leaves in MSG.
step() { # LABEL FUNCTION ARGS...
  local label=$1
  shift
  MSG=""
  "$@"
  b_log "$label: $MSG (load $(cut -d' ' -f1 /proc/loadavg))"
  settle
}

# ---- the runs ---------------------------------------------------------------
STARTED=$(b_now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
  b_log "warning: load average is $LOAD_START on $(nproc) cores before we start;" \
    "other work on this machine will show up in the figures (compare ratios, not absolutes)"
fi
HS=$(numfmt --to=iec "$SIZE")
for ((rep = 1; rep <= REPS; rep++)); do
  tag="rep $rep/$REPS"
  if ! skipped single; then
    step "$tag custos PATCH $HS" m_custos_single "$IN" "$SIZE" "$IN_SHA" custos
    if [ -n "$BASELINE" ]; then
      CBIN=$BASELINE
      step "$tag baseline custos PATCH $HS" m_custos_single "$IN" "$SIZE" "$IN_SHA" base
      CBIN=$CUSTOS
    fi
    step "$tag nginx PUT $HS" m_nginx_single
    if [ "$TUS_OK" = 1 ]; then step "$tag @tus/server PATCH $HS" m_tus_single; fi
  fi
  if ! skipped limits; then
    step "$tag loopback HTTP, body discarded, $HS" m_loopback
    if [ "$SOCAT_OK" = 1 ]; then step "$tag loopback TCP (socat) $HS" m_socat; fi
    step "$tag dd O_DIRECT+fsync $HS" m_dd direct
    step "$tag dd buffered $HS" m_dd buffered
    step "$tag dd buffered+fsync $HS" m_dd buffered-fsync
    step "$tag openssl speed sha256" m_sha
  fi
done

HP=$(numfmt --to=iec "$PUSH_SIZE")
if [ "$PUSH_OK" = 1 ]; then
  for ((rep = 1; rep <= REPS; rep++)); do
    tag="rep $rep/$REPS"
    step "$tag custos push $HP" m_custos_push
    step "$tag custos PATCH (curl) $HP" m_custos_single "$PUSH_IN" "$PUSH_SIZE" "$PUSH_SHA" c1
  done
elif ! skipped push; then
  b_log "custos push not available (\`custos push --help\` does not describe its options); skipped"
fi

HC=$(numfmt --to=iec "$CONC_SIZE")
if ! skipped conc; then
  for ((rep = 1; rep <= REPS; rep++)); do
    tag="rep $rep/$REPS"
    step "$tag custos $CONC x $HC" m_custos_conc
    if [ -n "$BASELINE" ]; then
      CBIN=$BASELINE
      step "$tag baseline custos $CONC x $HC" m_custos_conc bconc
      CBIN=$CUSTOS
    fi
    step "$tag nginx $CONC x $HC" m_nginx_conc
    if [ "$TUS_OK" = 1 ]; then step "$tag @tus/server $CONC x $HC" m_tus_conc; fi
  done
fi
ELAPSED=$(awk -v a="$STARTED" -v b="$(b_now)" 'BEGIN {printf "%.0f", b-a}')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- summary ----------------------------------------------------------------
have() { [ -s "$RES/$1" ]; }
med() { b_median <"$RES/$1"; }
# "861 MB/s [850-870]" from a file of bytes/s
fmt_rate() {
  have "$1" || { echo "n/a"; return; }
  printf '%5s MB/s' "$(b_mb "$(med "$1")")"
  [ "$REPS" -gt 1 ] && printf ' [%s-%s]' "$(b_mb "$(b_min <"$RES/$1")")" "$(b_mb "$(b_max <"$RES/$1")")"
  echo
}
fmt_rss() { have "$1" && printf '%s MiB' "$(awk -v k="$(b_max <"$RES/$1")" 'BEGIN {printf "%.1f", k/1024}')" || echo n/a; }
fmt_cpu() { have "$1" && printf '%s s' "$(med "$1")" || echo n/a; }
MISSED=0
# ratio line: LABEL NUM DEN [TARGET [NOTE]]; with no target, NOTE (default
# "physical limit") says what the ratio is for.
ratio() {
  local label=$1 num=$2 den=$3 target=${4:-} note=${5:-physical limit} r verdict
  if ! have "$num" || ! have "$den"; then
    printf '  %-50s %6s\n' "$label" "n/a"
    return
  fi
  r=$(b_div "$(med "$num")" "$(med "$den")")
  if [ -n "$target" ]; then
    if awk -v r="$r" -v t="$target" 'BEGIN {exit !(r >= t)}'; then verdict=met; else verdict=MISSED MISSED=1; fi
    printf '  %-50s %6s   target >= %s   %s\n' "$label" "$r" "$target" "$verdict"
  else
    printf '  %-50s %6s   (%s)\n' "$label" "$r" "$note"
  fi
}
rss_check() { # LABEL FILE LIMIT_MIB
  local v verdict
  have "$2" || { printf '  %-50s %6s\n' "$1" "n/a"; return; }
  v=$(awk -v k="$(b_max <"$RES/$2")" 'BEGIN {printf "%.1f", k/1024}')
  if awk -v v="$v" -v t="$3" 'BEGIN {exit !(v < t)}'; then verdict=met; else verdict=MISSED MISSED=1; fi
  printf '  %-50s %6s MiB   target < %s MiB   %s\n' "$1" "$v" "$3" "$verdict"
}

summary() {
  echo "Custos ingest benchmark (bench/ingest/run.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(b_machine)"
  echo "custos:  $CUSTOS$CUSTOS_NOTE"
  [ -z "$BASELINE" ] || echo "baseline: $BASELINE"
  echo "disk:    $(df --output=source "$T" | tail -n 1) (scratch $TMPBASE)"
  echo "load:    $LOAD_START before, $LOAD_END after (1, 5, 15 min; includes this benchmark)"
  echo "runs:    $REPS of each, interleaved; medians, [min-max]; MB = 10^6 bytes; RSS = VmHWM (the max over runs); took ${ELAPSED} s"
  echo "         page-cache writers (nginx, @tus/server, buffered dd) wait ${COOL} s first (--cool)"
  echo
  if ! skipped limits; then
    echo "Physical limits, measured in the same run"
    printf '  %-50s %s\n' "SHA-256 (openssl speed -evp sha256, 1 MiB)" "$(fmt_rate sha.rate)"
    printf '  %-50s %s\n' "disk, dd $HS oflag=direct conv=fsync" "$(fmt_rate dd-direct.rate)"
    printf '  %-50s %s\n' "disk, dd $HS buffered, no fsync" "$(fmt_rate dd-buffered.rate)"
    printf '  %-50s %s\n' "disk, dd $HS buffered + conv=fsync" "$(fmt_rate dd-buffered-fsync.rate)"
    printf '  %-50s %s\n' "loopback HTTP, body discarded (curl->nginx)" "$(fmt_rate loop.rate)"
    printf '  %-50s %s\n' "loopback TCP, socat->socat, 1 MiB buffers" "$(fmt_rate socat.rate)"
    echo
  fi
  if ! skipped single; then
    echo "One upload of $HS in one request (curl -T)"
    printf '  %-50s %-26s RSS %-10s CPU %s\n' "custos tus PATCH (hash, O_DIRECT, fsync, index)" \
      "$(fmt_rate custos.rate)" "$(fmt_rss custos.rss)" "$(fmt_cpu custos.cpu)"
    if [ -n "$BASELINE" ]; then
      printf '  %-50s %-26s RSS %-10s CPU %s\n' "baseline custos tus PATCH" \
        "$(fmt_rate base.rate)" "$(fmt_rss base.rss)" "$(fmt_cpu base.cpu)"
    fi
    printf '  %-50s %-26s %-14s CPU %s\n' "nginx PUT (dav; page cache, no hash/fsync)" \
      "$(fmt_rate nginx.rate)" "" "$(fmt_cpu nginx.cpu)"
    if [ "$TUS_OK" = 1 ]; then
      printf '  %-50s %-26s RSS %-10s CPU %s\n' "@tus/server PATCH (file store)" \
        "$(fmt_rate tus.rate)" "$(fmt_rss tus.rss)" "$(fmt_cpu tus.cpu)"
    else
      printf '  %-50s %s\n' "@tus/server PATCH" "not measured: $TUS_WHY"
    fi
    echo
    echo "Ratios (of medians)"
    ratio "custos / nginx PUT" custos.rate nginx.rate "$T_VS_NGINX"
    if [ -n "$BASELINE" ]; then ratio "custos / baseline custos" custos.rate base.rate "" "the change"; fi
    if [ "$TUS_OK" = 1 ]; then ratio "custos / @tus/server" custos.rate tus.rate "$T_VS_TUS"; fi
    if ! skipped limits; then
      ratio "custos / SHA-256 (openssl speed)" custos.rate sha.rate
      ratio "custos / disk O_DIRECT+fsync (dd)" custos.rate dd-direct.rate
      ratio "custos / loopback HTTP" custos.rate loop.rate
      ratio "custos / loopback TCP (socat)" custos.rate socat.rate
      ratio "nginx PUT / loopback HTTP" nginx.rate loop.rate
      ratio "nginx PUT / disk buffered, no fsync (dd)" nginx.rate dd-buffered.rate
    fi
    rss_check "custos peak RSS, $HS upload" custos.rss "$T_RSS_ONE_MIB"
    echo
  fi
  if [ "$PUSH_OK" = 1 ]; then
    echo "custos push of $HP"
    printf '  %-50s %-26s RSS %-10s CPU %s\n' "custos push" "$(fmt_rate push.rate)" \
      "$(fmt_rss push.rss)" "$(fmt_cpu push.cpu)"
    printf '  %-50s %-26s RSS %-10s CPU %s\n' "curl PATCH, same size" "$(fmt_rate c1.rate)" \
      "$(fmt_rss c1.rss)" "$(fmt_cpu c1.cpu)"
    ratio "custos push / curl PATCH" push.rate c1.rate "" "client overhead"
    ratio "custos push / nginx PUT ($HS)" push.rate nginx.rate "" "no target"
    rss_check "custos peak RSS, push $HP" push.rss "$T_RSS_ONE_MIB"
    rss_check "custos peak RSS, curl PATCH $HP" c1.rss "$T_RSS_ONE_MIB"
    echo
  elif ! skipped push; then
    echo "custos push of $HP: custos push not available (placeholder build)"
    echo
  fi
  if ! skipped conc; then
    echo "$CONC concurrent uploads of $HC each (one request each, started together)"
    printf '  %-50s %-26s RSS %-10s CPU %s\n' "custos" "$(fmt_rate cconc.rate)" \
      "$(fmt_rss cconc.rss)" "$(fmt_cpu cconc.cpu)"
    if [ -n "$BASELINE" ]; then
      printf '  %-50s %-26s RSS %-10s CPU %s\n' "baseline custos" "$(fmt_rate bconc.rate)" \
        "$(fmt_rss bconc.rss)" "$(fmt_cpu bconc.cpu)"
    fi
    printf '  %-50s %-26s %-14s CPU %s\n' "nginx PUT" "$(fmt_rate nconc.rate)" "" "$(fmt_cpu nconc.cpu)"
    if [ "$TUS_OK" = 1 ]; then
      printf '  %-50s %-26s RSS %-10s CPU %s\n' "@tus/server" \
        "$(fmt_rate tconc.rate)" "$(fmt_rss tconc.rss)" "$(fmt_cpu tconc.cpu)"
    fi
    ratio "custos / nginx PUT, concurrent" cconc.rate nconc.rate "" "no target"
    if [ -n "$BASELINE" ]; then ratio "custos / baseline custos, concurrent" cconc.rate bconc.rate "" "the change"; fi
    if [ "$TUS_OK" = 1 ]; then ratio "custos / @tus/server, concurrent" cconc.rate tconc.rate "" "no target"; fi
    rss_check "custos peak RSS, $CONC x $HC" cconc.rss "$T_RSS_CONC_MIB"
    echo
  fi
  echo "Raw samples (bytes/s, KiB, CPU s), in run order:"
  local f
  for f in "$RES"/*; do printf '  %-16s %s\n' "$(basename "$f")" "$(tr '\n' ' ' <"$f")"; done
}

mkdir -p "$(dirname "$RESULTS")"
summary | tee "$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
# MISSED is set inside the summary's subshell; recompute it here.
MISSED=0
summary_missed() { grep -q ' MISSED$' "$RESULTS"; }
summary_missed && MISSED=1
b_log "summary written to $RESULTS"
if [ "$STRICT" = 1 ] && [ "$MISSED" = 1 ]; then exit 3; fi
exit 0
