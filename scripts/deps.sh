#!/usr/bin/env bash
# Installs what Custos needs from Debian's packages, only what is missing.
#   scripts/deps.sh          build and run dependencies
#   scripts/deps.sh --test   also what the tests use (ffmpeg CLI, curl, Node.js)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libssl-dev libcurl4-openssl-dev librocksdb-dev
      libmicrohttpd-dev libjansson-dev libavformat-dev libavcodec-dev libavutil-dev
      libswscale-dev libswresample-dev)
if [ "${1:-}" = "--test" ]; then
  # chromium: the access copy must play in a browser (tests/integration/js/play-video.cjs)
  pkgs+=(libcmocka-dev ffmpeg curl ca-certificates jq gdb strace python3 openssl chromium)
  command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
