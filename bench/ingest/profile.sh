#!/usr/bin/env bash
# Profiles the Custos upload path once: one tus PATCH of --size bytes into a
# fresh server, sampled with perf (cpu-clock, so it works inside a VM
# without hardware counters). Prints where the server's CPU time went, per
# thread and per symbol, who calls memcpy (a DWARF call graph on a smaller
# upload), and a syscall summary of the HTTP thread (perf trace).
#
# Without a usable perf it falls back to valgrind --tool=callgrind on a
# 256 MiB upload (much slower, instructions rather than time).
#
# Not a test. See bench/ingest/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

SIZE=2G DWARF_SIZE=512M OUT=""
while [ $# -gt 0 ]; do
  case $1 in
  --size) SIZE=$2; shift 2 ;;
  --dwarf-size) DWARF_SIZE=$2; shift 2 ;;
  --out) OUT=$2; shift 2 ;;
  -h | --help)
    cat <<'EOF'
usage: bench/ingest/profile.sh [--size SIZE] [--dwarf-size SIZE] [--out DIR]

  --size SIZE        the upload sampled with perf record -g (default 2G)
  --dwarf-size SIZE  the upload sampled with a DWARF call graph (default 512M; 0 = skip)
  --out DIR          keep perf.data files and reports in DIR
                     (default bench/out/profile-DATE; bench/out/ is git-ignored)
Environment: CUSTOS (the binary; default build-bench, built when missing), BENCH_TMP.
EOF
    exit 0
    ;;
  *) b_die "unknown option $1 (see --help)" ;;
  esac
done
SIZE=$(b_size "$SIZE") DWARF_SIZE=$(b_size "$DWARF_SIZE")
[ -n "$OUT" ] || OUT="$ROOT/bench/out/profile-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
CUSTOS=$(realpath "$(b_custos_bin "$ROOT")")

T=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/custos-prof.XXXXXX")
SPID=""
cleanup() {
  local rc=$?
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    kill -TERM "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
  fi
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

b64() { printf '%s' "$1" | base64 -w0; }
start() { # [wrapper...] -> SPID, URL, TOK
  rm -rf "${T:?}/home" "$T/port"
  "$@" "$CUSTOS" serve --home "$T/home" --listen 127.0.0.1:0 --port-file "$T/port" >>"$T/server.log" 2>&1 &
  SPID=$!
  b_wait_file "$T/port" "$SPID" 120 || b_die "custos did not start"
  URL="http://127.0.0.1:$(cat "$T/port")"
  TOK=$("$CUSTOS" token create --server "$URL" --token "$(cat "$T/home/admin.token")" \
    --role recorder --device cam1 2>>"$T/server.log")
}
stop() {
  kill -TERM "$SPID"
  wait "$SPID" || true
  SPID=""
}
create() { # FILE -> upload URL
  curl -sS -o /dev/null -D "$T/h" -X POST -H "Authorization: Bearer $TOK" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Length: $(stat -c %s "$1")" \
    -H "Upload-Metadata: device_id $(b64 cam1),filename $(b64 "$(basename "$1")")" "$URL/v1/uploads"
  grep -i '^Location:' "$T/h" | cut -d' ' -f2 | tr -d '\r'
}
patch() { # URL FILE
  curl -sS -o /dev/null -H 'Expect:' -w '%{http_code} %{time_total}' -X PATCH -T "$2" \
    -H "Authorization: Bearer $TOK" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' "$1"
}
report_rate() { # "code secs" BYTES
  local code secs
  read -r code secs <<<"$1"
  [ "$code" = 204 ] || b_die "PATCH answered $code"
  awk -v b="$2" -v s="$secs" 'BEGIN {printf "%.0f MB/s (%.2f s)\n", b/s/1e6, s}'
}

# head(1) for the middle of a pipeline: reads all its input, so the writer
# never dies of SIGPIPE (which pipefail would turn into a failed script).
trim() { awk -v n="$1" 'NR <= n'; }

gen() { # FILE BYTES
  openssl enc -aes-128-ctr -nosalt -K "$(openssl rand -hex 16)" -iv "$(openssl rand -hex 16)" \
    -in /dev/zero 2>/dev/null | head -c "$2" >"$1" || true
}

perf_ok() { command -v perf >/dev/null && perf record -e cpu-clock -o "$T/probe.data" -- true >/dev/null 2>&1; }

if ! perf_ok; then
  b_log "perf is not usable here; trying valgrind --tool=callgrind on 256 MiB"
  command -v valgrind >/dev/null || b_apt_install valgrind
  gen "$T/in.bin" $((256 << 20))
  sync
  start valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" --separate-threads=no
  loc=$(create "$T/in.bin")
  b_log "PATCH 256 MiB under callgrind: $(report_rate "$(patch "$loc" "$T/in.bin")" $((256 << 20)))"
  stop
  callgrind_annotate --inclusive=no "$OUT/callgrind.out" 2>/dev/null | trim 40 | tee "$OUT/callgrind.txt"
  exit 0
fi

echo "Custos upload profile, $(date -u '+%Y-%m-%d %H:%M UTC'); $(b_machine)"
echo "binary: $CUSTOS; reports in $OUT"
gen "$T/in.bin" "$SIZE"
sync

# 1. Where the time goes: perf record -g on the whole server process.
start
loc=$(create "$T/in.bin")
perf record -q -e cpu-clock -F 999 -g -p "$SPID" -o "$OUT/perf.data" 2>>"$T/perf.log" &
PERF=$!
sleep 0.5
r=$(patch "$loc" "$T/in.bin")
kill -INT "$PERF"
wait "$PERF" || true
stop
echo
echo "== PATCH of $(numfmt --to=iec "$SIZE") under perf record: $(report_rate "$r" "$SIZE")"
echo
echo "== samples per thread (999 Hz; a thread busy for the whole PATCH has ~999/s)"
perf script -i "$OUT/perf.data" -F comm,tid 2>/dev/null | awk '{c[$1" "$2]++} END {for (k in c) print c[k], k}' |
  sort -rn | trim 8 | tee "$OUT/threads.txt"
echo
echo "== share of all samples by library (libcrypto is SHA-256; it ships without symbols)"
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | trim 8 |
  tee "$OUT/dso.txt"
echo
echo "== top symbols, per thread (libcrypto's addresses folded into one line)"
awk 'NR <= 2 {print $3}' "$OUT/threads.txt" | while read -r tid; do
  echo "-- tid $tid"
  perf report -i "$OUT/perf.data" --tid "$tid" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    grep '%' | awk '$2 ~ /libcrypto/ {c += $1; next} {print} END {if (c) printf "    %.2f%%  libcrypto.so (all addresses: SHA-256)\n", c}' |
    sort -t% -k1 -rn | trim 14
done | tee "$OUT/symbols.txt"

# 2. Who calls memcpy: a DWARF call graph on a smaller upload.
if [ "$DWARF_SIZE" -gt 0 ]; then
  head -c "$DWARF_SIZE" "$T/in.bin" >"$T/small.bin"
  start
  loc=$(create "$T/small.bin")
  perf record -q -e cpu-clock -F 499 --call-graph dwarf,8192 -p "$SPID" -o "$OUT/dwarf.data" 2>>"$T/perf.log" &
  PERF=$!
  sleep 0.5
  r=$(patch "$loc" "$T/small.bin")
  kill -INT "$PERF"
  wait "$PERF" || true
  stop
  echo
  echo "== callers of the memcpy/memmove hot spot (DWARF, $(numfmt --to=iec "$DWARF_SIZE"): $(report_rate "$r" "$DWARF_SIZE"))"
  perf report -i "$OUT/dwarf.data" --no-children --sort sym --stdio -G 2>/dev/null |
    awk '!done && /__mem(move|cpy)_/ && /%/ {on=1} on && /^$/ {on=0; done=1} on' | trim 30 | tee "$OUT/memcpy-callers.txt"
fi

# 3. Syscalls of the HTTP thread (recv sizes, epoll round trips, futex waits).
if perf trace -s -o "$T/t.txt" -- true >/dev/null 2>&1; then
  head -c "$((DWARF_SIZE > 0 ? DWARF_SIZE : 512 << 20))" "$T/in.bin" >"$T/small2.bin"
  start
  loc=$(create "$T/small2.bin")
  perf trace -s -p "$SPID" -o "$OUT/trace.txt" 2>>"$T/perf.log" &
  PERF=$!
  sleep 0.5
  r=$(patch "$loc" "$T/small2.bin")
  sleep 0.2
  kill -INT "$PERF"
  wait "$PERF" || true
  stop
  echo
  echo "== syscalls during a $(stat -c %s "$T/small2.bin" | numfmt --to=iec) PATCH under perf trace (slowed: $(report_rate "$r" "$(stat -c %s "$T/small2.bin")"))"
  awk '/ events, / {show = ($1 == "MHD-worker" && $3 + 0 > 1000)} show' "$OUT/trace.txt" | trim 18
fi
