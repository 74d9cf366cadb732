#!/usr/bin/env bash
# t6051: copies of one exported bag, each changed in one way, fail custos
# verify with exit 3 and a message naming what changed, as text and as JSON:
#  - a payload byte: the file, its manifest line and both hashes;
#  - a manifest line: manifest-sha512.txt and the file it lists (and the tag
#    manifest names the manifest);
#  - an event in events.jsonl, with the tag manifest re-sealed to cover the
#    change: the proof fails at that ledger index (bagit_validate.py, which
#    knows only RFC 8493, finds that bag valid);
#  - a token byte: the token file;
#  - REPORT.json: the tag manifest names it; re-sealed, the report check
#    names the file whose size it lies about;
#  - the tar: a changed payload byte inside it is named like the
#    directory's; a damaged header or a truncated tar is a tar failure.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_export.sh"
if ! "$CUSTOS" export --help >/dev/null 2>&1; then
  echo "SKIP: custos export is not built yet" >&2
  exit 77
fi

t_start_server
A=(-H "$(auth "$ADMIN")")
t_noise 40000 "$T/one.bin"
t_noise 25000 "$T/two.bin"
E1=$(t_push "$T/one.bin" cam-6051 --case case-6051)
E2=$(t_push "$T/two.bin" cam-6051 --case case-6051)
for e in "$E1" "$E2"; do t_wait_200 "$URL/v1/evidence/$e/timestamp" "$T/tok.tsr"; done
x_export case-6051 '{}'
X=$XID
x_done "$X" 120
NAME=$(jq -r .bag <<<"$BODY")
call -o "$T/bag.tar" "${A[@]}" "$URL/v1/exports/$X"
assert_eq 200 "$ST" "the tar download"
t_stop_server
mkdir "$T/x"
tar -C "$T/x" -xf "$T/bag.tar"
PRISTINE_BAG="$T/x/$NAME"
P1=$(cd "$PRISTINE_BAG" && ls "data/$E1/original/"*)
P2=$(cd "$PRISTINE_BAG" && ls "data/$E2/original/"*)

# fresh NAME: a copy of the bag at $B.
fresh() {
  rm -rf "$T/c/$1"
  mkdir -p "$T/c/$1"
  cp -a "$PRISTINE_BAG" "$T/c/$1/"
  B="$T/c/$1/$NAME"
}
# vfy ARGS...: custos verify as text ($T/v.txt) and JSON ($T/v.json); VRC.
vfy() {
  VRC=0
  "$CUSTOS" verify "$@" >"$T/v.txt" 2>&1 || VRC=$?
  local rc=0
  "$CUSTOS" verify --json "$@" >"$T/v.json" 2>"$T/v.err" || rc=$?
  assert_eq "$VRC" "$rc" "verify's exit status with and without --json"
}
# The tag manifest recomputed, as someone covering a change would.
reseal_tags() {
  (cd "$B" && find . -type f ! -name 'tagmanifest-*' ! -path './data/*' | sed 's|^\./||' | LC_ALL=C sort |
    xargs sha256sum >tagmanifest-sha256.txt)
}
failed() { grep "^FAILED $1: " "$T/v.txt" | grep -F -- "$2" | grep -qF -- "${3:-}" ||
  fail "no 'FAILED $1:' line naming '$2' ${3:+and '$3' }: $(cat "$T/v.txt")"; }
json_count() { jq "[.failures[] | $1] | length" "$T/v.json"; }
flip() { # flip FILE OFFSET
  python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read()); b[off if off >= 0 else len(b) + off] ^= 0x01
open(p, "wb").write(bytes(b))
PY
}

fresh untouched
vfy "$B"
assert_eq 0 "$VRC" "the untouched copy ($(cat "$T/v.txt"))"

# 1. A payload byte.
fresh payload
old=$(sha256sum "$B/$P1" | cut -c1-64)
flip "$B/$P1" 1000
new=$(sha256sum "$B/$P1" | cut -c1-64)
vfy "$B"
assert_eq 3 "$VRC" "a changed payload byte ($(cat "$T/v.txt"))"
failed bagit "$P1: manifest-sha256.txt line" "says SHA-256 $old, the file's is $new"
failed bagit "$P1: manifest-sha512.txt line"
assert_eq 2 "$(jq .failure_count "$T/v.json")" "failures for one payload byte ($(jq -c .failures "$T/v.json"))"
assert_eq 2 "$(json_count "select(.check == \"bagit\" and .path == \"$P1\")")" "JSON failures naming $P1"
rc=0
python3 "$IT_DIR/bagit_validate.py" --all-tags "$B" >"$T/bv.txt" 2>&1 || rc=$?
assert_eq 1 "$rc" "bagit_validate.py on a changed payload byte ($(cat "$T/bv.txt"))"
grep -qF "$P1" "$T/bv.txt" || fail "bagit_validate.py does not name $P1: $(cat "$T/bv.txt")"

# 2. A manifest line.
fresh manifest
python3 - "$B/manifest-sha512.txt" "$P2" <<'PY'
import sys
p, path = sys.argv[1], sys.argv[2]
out = []
for line in open(p).read().splitlines():
    if line.endswith("  " + path):
        line = ("1" if line[0] == "0" else "0") + line[1:]
    out.append(line)
open(p, "w").write("\n".join(out) + "\n")
PY
cmp -s "$B/manifest-sha512.txt" "$PRISTINE_BAG/manifest-sha512.txt" && fail "the manifest line was not changed"
vfy "$B"
assert_eq 3 "$VRC" "a changed manifest line ($(cat "$T/v.txt"))"
failed bagit "$P2: manifest-sha512.txt line"
failed bagit "manifest-sha512.txt: tagmanifest-sha256.txt line"
assert_eq 2 "$(jq .failure_count "$T/v.json")" "failures for one manifest line ($(jq -c .failures "$T/v.json"))"
rc=0
python3 "$IT_DIR/bagit_validate.py" --all-tags "$B" >"$T/bv.txt" 2>&1 || rc=$?
assert_eq 1 "$rc" "bagit_validate.py on a changed manifest line ($(cat "$T/bv.txt"))"

# 3. An event in events.jsonl (its data), the tag manifest re-sealed.
fresh event
EJ="custody/$E1/events.jsonl"
I=$(head -n 1 "$B/$EJ" | jq .index)
python3 - "$B/$EJ" <<'PY'
import base64, json, sys
p = sys.argv[1]
lines = open(p).read().splitlines()
first = json.loads(lines[0])
ev = json.loads(base64.b64decode(first["data"]))
ev["size"] = ev.get("size", 0) + 1  # the event now says another size
first["data"] = base64.b64encode(json.dumps(ev, separators=(",", ":"), sort_keys=True).encode()).decode()
lines[0] = json.dumps(first, separators=(",", ":"))
open(p, "w").write("\n".join(lines) + "\n")
PY
reseal_tags
vfy "$B"
assert_eq 3 "$VRC" "a changed event ($(cat "$T/v.txt"))"
failed proofs "$EJ line 1 (ledger index $I)" "do not lead to the root"
assert_eq 1 "$(json_count "select(.check == \"proofs\" and .index == $I and .evidence == \"$E1\")")" \
  "JSON proof failures at index $I ($(jq -c .failures "$T/v.json"))"
assert_eq 0 "$(json_count 'select(.check == "bagit")')" "bagit failures once the tag manifest is re-sealed"
python3 "$IT_DIR/bagit_validate.py" --all-tags "$B" >"$T/bv.txt" 2>&1 ||
  fail "bagit_validate.py should find the re-sealed bag valid: $(cat "$T/bv.txt")"

# 4. A token byte.
fresh token
TK="custody/$E2/original.tsr"
flip "$B/$TK" -20
vfy "$B"
assert_eq 3 "$VRC" "a changed token ($(cat "$T/v.txt"))"
failed timestamps "$TK" "evidence $E2"
failed bagit "$TK: tagmanifest-sha256.txt line"
assert_eq 1 "$(json_count "select(.check == \"timestamps\" and .path == \"$TK\")")" "JSON token failures"

# 5. REPORT.json.
fresh report
jq --arg p "$P2" '(.items[].files[] | select(.path == $p) | .size) += 1' "$B/REPORT.json" >"$T/r.json"
cp "$T/r.json" "$B/REPORT.json"
vfy "$B"
assert_eq 3 "$VRC" "a changed REPORT.json ($(cat "$T/v.txt"))"
failed bagit "REPORT.json: tagmanifest-sha256.txt line"
reseal_tags
vfy "$B"
assert_eq 3 "$VRC" "a changed REPORT.json, the tag manifest re-sealed ($(cat "$T/v.txt"))"
failed report "REPORT.json says $P2 is" "bytes, the file is"
assert_eq 1 "$(jq .failure_count "$T/v.json")" "failures for a re-sealed REPORT.json ($(jq -c .failures "$T/v.json"))"

# 6. The tar: a payload byte changed inside it, a damaged header, a truncation.
fresh tarred
flip "$B/$P1" 7
tar -C "$T/c/tarred" -cf "$T/changed.tar" "$NAME"
vfy "$T/changed.tar"
assert_eq 3 "$VRC" "a tar with a changed payload byte ($(cat "$T/v.txt"))"
failed bagit "$P1: manifest-sha256.txt line"
cp "$T/bag.tar" "$T/header.tar"
flip "$T/header.tar" 520
vfy "$T/header.tar"
assert_eq 3 "$VRC" "a tar with a damaged header ($(cat "$T/v.txt"))"
failed tar "checksum"
head -c $(($(stat -c %s "$T/bag.tar") / 2)) "$T/bag.tar" >"$T/half.tar"
vfy "$T/half.tar"
assert_eq 3 "$VRC" "half a tar ($(cat "$T/v.txt"))"
assert_eq tar "$(jq -r '.failures[0].check' "$T/v.json")" "the check that fails half a tar"

# Could not run: no such bag.
vfy "$T/no-such-bag"
assert_eq 1 "$VRC" "a bag that does not exist"
