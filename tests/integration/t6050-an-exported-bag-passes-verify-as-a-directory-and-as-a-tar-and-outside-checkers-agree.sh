#!/usr/bin/env bash
# t6050: a case exported by the server (POST /v1/cases/{id}/exports, the tar
# of GET /v1/exports/{id}) with an original's derived copies and a clip:
#  - custos verify passes on the bag's directory and on the tar as
#    downloaded, and with the server's ledger key given from outside;
#  - the outside checkers agree: bagit_validate.py (RFC 8493, stdlib
#    Python), sha256sum/sha512sum -c on the manifests, merkle_verify.py on
#    the checkpoint and on every event's inclusion proof, openssl ts -verify
#    on every token;
#  - a ledger key from outside that is not the bag's fails it (exit 3),
#    naming both keys;
#  - what `custos export --out DIR` and `--out FILE.tar` save passes too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_export.sh"
if ! "$CUSTOS" export --help >/dev/null 2>&1; then
  echo "SKIP: custos export is not built yet" >&2
  exit 77
fi
command -v ffmpeg >/dev/null || exit 77

t_start_server
A=(-H "$(auth "$ADMIN")")
t_make_mp4 "$T/rec.mp4" 4
t_noise 30000 "$T/notes.bin"
E1=$(t_push "$T/rec.mp4" cam-6050 --case case-6050)
E2=$(t_push "$T/notes.bin" cam-6050 --case case-6050)
t_rend_settle "$E1"
for e in "$E1" "$E2"; do t_wait_200 "$URL/v1/evidence/$e/timestamp" "$T/tok.tsr"; done

x_export case-6050 "{\"renditions\":[\"master\",\"access\",\"framehash\",\"poster\"],
       \"clips\":[{\"evidence\":\"$E1\",\"start\":\"1\",\"end\":\"3\"}]}"
X=$XID
x_done "$X" 180
NAME=$(jq -r .bag <<<"$BODY")
assert_eq "custos-case-6050-$X" "$NAME" "the bag's name"

call -o "$T/bag.tar" "${A[@]}" "$URL/v1/exports/$X"
assert_eq 200 "$ST" "the tar download"
mkdir "$T/x"
tar -C "$T/x" -xf "$T/bag.tar" || fail "GNU tar cannot read the export's tar"
BAG="$T/x/$NAME"
[ -d "$BAG/data/$E1" ] && [ -d "$BAG/data/$E2" ] || fail "the bag lacks an item: $(ls -R "$BAG" | head -40)"
ls "$BAG/data/$E1/clips/"clip-copy-1000-3000.mp4 >/dev/null || fail "the bag lacks the clip: $(ls -R "$BAG/data")"

# custos verify: the directory, as text and as JSON.
rc=0
"$CUSTOS" verify "$BAG" >"$T/v.txt" 2>&1 || rc=$?
assert_eq 0 "$rc" "custos verify on the bag's directory ($(cat "$T/v.txt"))"
grep -q '^All checks passed\.$' "$T/v.txt" || fail "no 'All checks passed.': $(cat "$T/v.txt")"
for g in BagIt 'signed head' proofs custody time-stamps REPORT.json; do
  grep -q "✓ $g" "$T/v.txt" || fail "no ✓ line for $g: $(cat "$T/v.txt")"
done
"$CUSTOS" verify --json "$BAG" >"$T/v.json" || fail "custos verify --json: $(cat "$T/v.json")"
files=$(find "$BAG/data" -type f | wc -l)
assert_eq true "$(jq .ok "$T/v.json")" "ok"
assert_eq "$files" "$(jq .checked.files "$T/v.json")" "payload files checked"
assert_eq 2 "$(jq .checked.items "$T/v.json")" "items checked"
assert_eq "$(jq .checked.events "$T/v.json")" "$(jq .checked.proofs "$T/v.json")" "every event proved"
events=$(cat "$BAG"/custody/*/events.jsonl | wc -l)
assert_eq "$events" "$(jq .checked.events "$T/v.json")" "events checked"
tokens=$(find "$BAG/custody" -name '*.tsr' | wc -l)
assert_eq "$tokens" "$(jq .checked.tokens "$T/v.json")" "tokens checked"
assert_eq 0 "$(jq .warning_count "$T/v.json")" "warnings ($(jq -c .warnings "$T/v.json"))"

# The tar as downloaded.
rc=0
"$CUSTOS" verify "$T/bag.tar" >"$T/vt.txt" 2>&1 || rc=$?
assert_eq 0 "$rc" "custos verify on the tar ($(cat "$T/vt.txt"))"
grep -q "$NAME" "$T/vt.txt" || fail "the tar's report does not name the bag: $(cat "$T/vt.txt")"
leftover=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'custos-verify.*' -newer "$T/bag.tar" 2>/dev/null | wc -l)
assert_eq 0 "$leftover" "temporary directories left by verifying the tar"

# The outside checkers.
python3 "$IT_DIR/bagit_validate.py" --all-tags "$BAG" >"$T/bv.txt" 2>&1 ||
  fail "bagit_validate.py refuses the bag: $(cat "$T/bv.txt")"
(cd "$BAG" && sha256sum -c --quiet manifest-sha256.txt && sha512sum -c --quiet manifest-sha512.txt &&
  sha256sum -c --quiet tagmanifest-sha256.txt) >"$T/sum.txt" 2>&1 || fail "sha*sum -c: $(cat "$T/sum.txt")"

call "${A[@]}" "$URL/v1/ledger/key"
PUB=$(jq -r .public_key <<<"$BODY")
VKEY=$(jq -r .vkey <<<"$BODY")
assert_eq "$VKEY" "$(head -n 1 "$BAG/custody/ledger-key.txt")" "the bag's ledger key is the server's"
read -r ORIGIN SIZE ROOT < <(MV checkpoint "$BAG/custody/checkpoint.txt" "$PUB") ||
  fail "merkle_verify.py refuses the checkpoint"
assert_eq "$SIZE" "$(jq .size "$BAG/custody/sth.json")" "sth.json's size"
assert_eq "$ROOT" "$(jq -r .root "$BAG/custody/sth.json")" "sth.json's root"
n=0
for f in "$BAG"/custody/*/events.jsonl; do
  while IFS= read -r line; do
    i=$(jq -r .index <<<"$line")
    leaf=$(jq -r .data <<<"$line" | MV leaves)
    mapfile -t path < <(jq -r '.audit_path[]' <<<"$line")
    MV inclusion "$i" "$SIZE" "$leaf" "$ROOT" "${path[@]}" >/dev/null ||
      fail "merkle_verify.py refuses the proof of ledger index $i in $f"
    n=$((n + 1))
  done <"$f"
done
assert_eq "$events" "$n" "events proved by merkle_verify.py"
for e in "$E1" "$E2"; do
  sha=$(sha256sum "$BAG/data/$e/original/"* | cut -c1-64)
  openssl ts -verify -digest "$sha" -in "$BAG/custody/$e/original.tsr" -CAfile "$BAG/custody/tsa-root.pem" \
    >"$T/ts.txt" 2>&1 || fail "openssl ts -verify refuses $e's token: $(cat "$T/ts.txt")"
done
if [ -f "$BAG/custody/checkpoint.tsr" ]; then
  openssl ts -verify -digest "$(sha256sum "$BAG/custody/checkpoint.txt" | cut -c1-64)" \
    -in "$BAG/custody/checkpoint.tsr" -CAfile "$BAG/custody/tsa-root.pem" >"$T/ts.txt" 2>&1 ||
    fail "openssl ts -verify refuses the head's token: $(cat "$T/ts.txt")"
fi

# The ledger key from outside: the server's passes, another fails naming both.
echo "$VKEY" >"$T/ledger.vkey"
rc=0
"$CUSTOS" verify --ledger-key "$T/ledger.vkey" "$BAG" >"$T/v.txt" 2>&1 || rc=$?
assert_eq 0 "$rc" "custos verify --ledger-key with the server's key ($(cat "$T/v.txt"))"
OTHER=$(python3 - "$ORIGIN" <<'PY'
import base64, hashlib, os, sys
name, pub = sys.argv[1], os.urandom(32)
kid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
print("%s+%s+%s" % (name, kid.hex(), base64.b64encode(b"\x01" + pub).decode()))
PY
)
echo "$OTHER" >"$T/other.vkey"
rc=0
"$CUSTOS" verify --ledger-key "$T/other.vkey" "$BAG" >"$T/v.txt" 2>&1 || rc=$?
assert_eq 3 "$rc" "custos verify --ledger-key with another key ($(cat "$T/v.txt"))"
grep '^FAILED sth:' "$T/v.txt" | grep -F "$VKEY" | grep -qF "$OTHER" ||
  fail "the failure does not name both keys: $(cat "$T/v.txt")"
# The same key file given to the tar.
rc=0
"$CUSTOS" verify --ledger-key "$T/other.vkey" "$T/bag.tar" >"$T/v.txt" 2>&1 || rc=$?
assert_eq 3 "$rc" "custos verify --ledger-key with another key, on the tar"

# custos export itself: a second export of the case, unpacked and as a tar;
# its bag (a later head, the first export's "exported" events) passes too.
CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" export case-6050 --out "$T/cli" >"$T/e.txt" 2>&1 ||
  fail "custos export --out DIR: $(cat "$T/e.txt")"
CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" export case-6050 --out "$T/cli.tar" >"$T/e.txt" 2>&1 ||
  fail "custos export --out FILE.tar: $(cat "$T/e.txt")"
for b in "$T"/cli/custos-case-6050-* "$T/cli.tar"; do
  rc=0
  "$CUSTOS" verify "$b" >"$T/v.txt" 2>&1 || rc=$?
  assert_eq 0 "$rc" "custos verify on what custos export saved ($(cat "$T/v.txt"))"
done
python3 "$IT_DIR/bagit_validate.py" --all-tags "$T"/cli/custos-case-6050-* >"$T/bv.txt" 2>&1 ||
  fail "bagit_validate.py refuses what custos export saved: $(cat "$T/bv.txt")"
t_stop_server
