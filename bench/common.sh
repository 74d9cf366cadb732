# shellcheck shell=bash
# Shared helpers for the benchmarks under bench/. Sourced, not run.
#
# Benchmarks are never part of the test suite: they take minutes, need a
# quiet machine and gigabytes of disk, and install their peers (nginx, npm
# packages) on demand. Each one prints its own figures; docs/BENCHMARKS.md
# keeps the ones we quote.
#
#   b_log MSG...              progress on stderr, with the time
#   b_die MSG...              fail with a message
#   b_as_root CMD...          run as root (sudo only when not root already)
#   b_apt_install PKG...      apt-get install -y, updating the lists once if needed
#   b_custos_bin ROOT         print the custos binary: $CUSTOS, or ROOT/build-bench/cli/custos
#                             (configured Release when missing, always re-made)
#   b_tree_version ROOT       the git commit of ROOT, and whether it has local changes
#   b_size BYTES|2G|64M       print a size in bytes (IEC suffixes)
#   b_now                     monotonic-enough wall clock, seconds with ns
#   b_median / b_min / b_max  numbers on stdin, one a line
#   b_div A B [DIGITS]        A/B, printed with DIGITS decimals (default 2)
#   b_mb BYTES_PER_S          as MB/s (10^6), no decimals
#   b_vmhwm PID               peak resident set size of PID, in KiB
#   b_cpu_ticks PID           user+system CPU ticks of PID so far
#   b_wait_file FILE PID [S]  wait until FILE is non-empty while PID lives
#   b_free_bytes DIR          free bytes on DIR's file system
#   b_machine                 one line: cores, CPU model, memory, kernel

b_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

b_die() {
  echo "bench: $*" >&2
  exit 1
}

b_as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    b_die "need root (or sudo) to run: $*"
  fi
}

b_apt_install() {
  b_log "installing $* (apt-get)"
  if ! b_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; then
    b_as_root apt-get update -q >/dev/null || true
    b_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
      b_die "cannot install $*"
  fi
}

b_custos_bin() {
  local root=$1
  if [ -n "${CUSTOS:-}" ]; then
    [ -x "$CUSTOS" ] || b_die "CUSTOS=$CUSTOS is not an executable"
    printf '%s\n' "$CUSTOS"
    return
  fi
  # Always (re)make: the tree changes under us, and a stale binary would
  # measure code that is no longer there. make is quick when nothing changed.
  local dir="$root/build-bench"
  mkdir -p "$dir"
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    b_log "configuring a Release build in $dir"
    (cd "$dir" && cmake .. -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >cmake.log 2>&1) ||
      b_die "cmake failed; see $dir/cmake.log"
  fi
  b_log "building custos in $dir"
  (cd "$dir" && make -j"$(nproc)" custos >make.log 2>&1) || b_die "build failed; see $dir/make.log"
  printf '%s\n' "$dir/cli/custos"
}

# The commit the source tree is at, and whether it has local changes.
b_tree_version() {
  local root=$1 rev
  rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || { echo "unknown (not a git tree)"; return; }
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    echo "$rev + uncommitted changes"
  else
    echo "$rev"
  fi
}

b_size() { numfmt --from=iec "$1"; }

b_now() { date +%s.%N; }

b_median() { sort -g | awk '{v[NR]=$1} END {if (!NR) exit 1; if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
b_min() { sort -g | head -n 1; }
b_max() { sort -g | tail -n 1; }

b_div() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {if (b+0 == 0) print "n/a"; else printf "%.*f\n", d, a/b}'; }

b_mb() { awk -v v="$1" 'BEGIN {printf "%.0f\n", v/1e6}'; }

b_vmhwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Fields 14 and 15 of /proc/PID/stat; the command name (field 2) may hold
# spaces, so count from the closing parenthesis.
b_cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }

b_wait_file() {
  local file=$1 pid=$2 secs=${3:-20} i
  for ((i = 0; i < secs * 20; i++)); do
    [ -s "$file" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

b_free_bytes() { df -B1 --output=avail "$1" | tail -n 1 | tr -d ' '; }

b_machine() {
  local cpu mem
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  mem=$(awk '/^MemTotal:/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
  printf '%s cores (nproc), %s, %s RAM, Linux %s\n' "$(nproc)" "${cpu:-unknown CPU}" "$mem" "$(uname -r)"
}

# For a benchmark's EXIT trap: stops the processes it started (the array
# PIDS) and, when it failed (RC non-zero), shows the end of each log in DIR.
b_stop_and_show_logs() { # RC DIR
  local pid log
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "$1" -ne 0 ]; then
    for log in "$2"/*.log; do
      [ -s "$log" ] || continue
      echo "---- $(basename "$log") (last 20 lines) ----" >&2
      tail -n 20 "$log" >&2
    done
  fi
}
