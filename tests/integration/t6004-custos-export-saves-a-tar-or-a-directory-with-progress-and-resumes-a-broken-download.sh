#!/usr/bin/env bash
# t6004: custos export CASE asks for the export, follows it and downloads the
# bag: with --out FILE.tar the tar (the server's bytes, renamed into place
# only when whole), with --out DIR the bag unpacked into DIR/<bag>/ (no tar
# left behind), by default ./<bag>.tar; --evidence, --renditions and --clip
# choose what goes in; on a terminal it draws progress bars; it prints the
# bag's path and a summary line (--json: the record). Through a proxy that
# cuts the first download short, it resumes with Range and If-Range and the
# tar is the same bytes. A reviewer's token is refused with the server's
# reason, and bad options are usage errors (exit 2).
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/lib_export.sh"
command -v ffmpeg >/dev/null || exit 77

t_start_server
LEGAL=$(t_token legal --user lou)
REV=$(t_token reviewer --user rita)
C=INC-6004
x_case "$C" "CLI case"
t_make_mp4 "$T/cam.mp4" 3
t_noise 2500000 "$T/big.bin"
E1=$(t_put "$ADMIN" "$T/cam.mp4" cam-1)
E2=$(t_put "$ADMIN" "$T/big.bin" cam-1)
x_link "$C" "$E1" "$E2"
x_ready "$E1" "$E2"
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$LEGAL"

# --out FILE.tar, on a terminal (script gives it one): progress bars.
script -qec "'$CUSTOS' export $C --renditions master,access --clip $E1:0.5-1.5 --out '$T/out.tar'" /dev/null \
  >"$T/tty.txt" 2>&1 || fail "custos export --out FILE.tar: $(cat "$T/tty.txt")"
grep -q 'exporting' "$T/tty.txt" || fail "no export progress: $(cat "$T/tty.txt")"
grep -q 'downloading .*100%' "$T/tty.txt" || fail "no download progress: $(cat "$T/tty.txt")"
[ -f "$T/out.tar" ] || fail "no tar saved"
[ ! -e "$T/out.tar.part" ] || fail "the .part is left"
tar -tf "$T/out.tar" >"$T/list"
BAG=$(awk 'NR == 1' "$T/list" | tr -d /)
assert_match "^custos-$C-[0-9a-f-]{36}$" "$BAG" "the bag in the tar"
X=${BAG#custos-$C-}
grep -q "^$T/out.tar" "$T/tty.txt" || fail "the path is not printed: $(cat "$T/tty.txt")"
grep -Eq '^2 items, 5 files, [0-9]+ bytes \(Payload-Oxum [0-9]+\.5\), tag manifest sha256 [0-9a-f]{64}' "$T/tty.txt" ||
  fail "no summary line: $(cat "$T/tty.txt")"
curl -sS -o "$T/server.tar" -H "$(auth "$LEGAL")" "$URL/v1/exports/$X"
cmp "$T/out.tar" "$T/server.tar" || fail "the saved tar is not the server's"
grep -q "^$BAG/data/$E1/clips/clip-copy-500-1500.mp4$" "$T/list" || fail "the clip is not in the bag"
grep -q "^$BAG/data/$E1/master/cam.mkv$" "$T/list" || fail "the master is not in the bag"

# --out DIR, one item, originals only; --json.
"$CUSTOS" export "$C" --evidence "$E2" --out "$T/bags" --json >"$T/j.json" 2>"$T/err" ||
  fail "custos export --out DIR: $(cat "$T/err")"
B2=$(jq -r .bag "$T/j.json")
assert_eq "$T/bags/$B2" "$(jq -r .path "$T/j.json")" "--json names the path"
assert_eq "$B2" "$(ls "$T/bags")" "only the bag is left in DIR"
(cd "$T/bags/$B2" && sha256sum --quiet -c manifest-sha256.txt && sha256sum --quiet -c tagmanifest-sha256.txt) ||
  fail "the unpacked bag does not check"
assert_eq "data/$E2/original/big.bin" "$(cut -c67- "$T/bags/$B2/manifest-sha256.txt")" "only what was asked for"
cmp "$T/bags/$B2/data/$E2/original/big.bin" "$T/big.bin" || fail "the original's bytes"
"$CUSTOS" export "$C" --evidence "$E2" --out "$T/bags" >/dev/null 2>&1 || true # another export: another name
assert_eq 2 "$(ls "$T/bags" | wc -l)" "a second export beside the first"

# The default: ./<bag>.tar in the current directory.
mkdir "$T/cwd"
(cd "$T/cwd" && "$CUSTOS" export "$C" --evidence "$E1" >"$T/out3" 2>"$T/err3") || fail "custos export: $(cat "$T/err3")"
[ "$(ls "$T/cwd")" = "$(basename "$(head -n 1 "$T/out3")")" ] || fail "default output: $(ls "$T/cwd") vs $(cat "$T/out3")"
assert_match '\.tar$' "$(ls "$T/cwd")" "a .tar"

# A broken download is resumed.
t_fault_proxy cut-export=1500000
"$CUSTOS" export "$C" --server "$PROXY" --out "$T/resumed.tar" >"$T/o4" 2>"$T/e4" ||
  fail "custos export through a cutting proxy: $(cat "$T/e4") $(cat "$T/proxy.log")"
grep -q 'cut the download' "$T/proxy.log" || fail "the proxy never cut: $(cat "$T/proxy.log")"
grep -q 'resuming' "$T/e4" || fail "custos export did not say it resumed: $(cat "$T/e4")"
grep -Eq '^GET /v1/exports/[0-9a-f-]{36} range=bytes=1500000- if-range="[0-9a-f]{64}" -> 206' "$T/proxy.log" ||
  fail "no resumed request with Range and If-Range: $(cat "$T/proxy.log")"
X4=$(tar -tf "$T/resumed.tar" | awk 'NR == 1' | tr -d / | sed "s/^custos-$C-//")
curl -sS -o "$T/server4.tar" -H "$(auth "$LEGAL")" "$URL/v1/exports/$X4"
cmp "$T/resumed.tar" "$T/server4.tar" || fail "the resumed tar is not the server's"

# Refusals.
rc=0
CUSTOS_TOKEN="$REV" "$CUSTOS" export "$C" --out "$T/no.tar" >/dev/null 2>"$T/e5" || rc=$?
assert_eq 1 "$rc" "a reviewer's export: exit status"
assert_match '403' "$(cat "$T/e5")" "the server's answer is shown"
[ ! -e "$T/no.tar" ] || fail "a refused export saved something"
for args in "--renditions thumbnails" "--clip $E1:abc-2" "--clip nope:1-2" "--evidence ../x" "extra"; do
  rc=0
  # shellcheck disable=SC2086
  "$CUSTOS" export $C $args >/dev/null 2>&1 || rc=$?
  assert_eq 2 "$rc" "custos export $C $args"
done
t_stop_server
