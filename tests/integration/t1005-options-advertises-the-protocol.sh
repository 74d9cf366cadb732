#!/usr/bin/env bash
# t1005: OPTIONS /v1/uploads needs no token and advertises tus 1.0.0:
# Tus-Version, the extensions (creation, creation-with-upload, termination,
# checksum, expiration), Tus-Max-Size equal to --max-upload, and the checksum
# algorithms (sha1 is mandatory, sha256 is ours); a Tus-Resumable on the
# request is ignored; Tus-Resumable appears once in the response.
. "$(dirname "$0")/lib.sh"

# has LIST ITEM: a comma list (optional spaces) contains ITEM.
has() { tr -d ' ' <<<"$1" | tr ',' '\n' | grep -qx "$2"; }

t_start_server --max-upload 123456789
for v in "" "Tus-Resumable: 0.9.9"; do
  call -X OPTIONS ${v:+-H "$v"} "$URL/v1/uploads"
  assert_match '^20[04]$' "$ST" "OPTIONS status (request header: '${v:-none}')"
  has "$(hdr Tus-Version)" 1.0.0 || fail "Tus-Version '$(hdr Tus-Version)' lacks 1.0.0"
  ext=$(hdr Tus-Extension)
  for e in creation creation-with-upload termination checksum expiration; do
    has "$ext" "$e" || fail "Tus-Extension '$ext' lacks $e"
  done
  assert_eq 123456789 "$(hdr Tus-Max-Size)" "Tus-Max-Size is --max-upload"
  alg=$(hdr Tus-Checksum-Algorithm)
  has "$alg" sha1 || fail "Tus-Checksum-Algorithm '$alg' lacks sha1"
  has "$alg" sha256 || fail "Tus-Checksum-Algorithm '$alg' lacks sha256"
  assert_eq 1.0.0 "$(hdr Tus-Resumable)" "OPTIONS Tus-Resumable"
  # One field line: a client that joins repeated fields would read "1.0.0, 1.0.0".
  assert_eq 1 "$(grep -ci '^Tus-Resumable:' "$T/h")" "number of Tus-Resumable header lines"
done
t_stop_server
