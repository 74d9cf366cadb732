#!/usr/bin/env bash
# t6000: a case of two small recordings and a text note is exported with the
# master and access copies and one clip: POST answers 202 with Location, the
# job finishes, GET /v1/exports/{id} streams a tar (its size, type, ETag and
# file name), GNU tar lists and extracts it, and inside the bag everything a
# court's expert would run passes: sha256sum -c and sha512sum -c on the payload
# manifests and on the tag manifest (which lists every tag file), exact
# bagit.txt, bag-info (Payload-Oxum recomputed, organization, case, who),
# openssl ts -verify of every original's token and of the head's token
# against custody/tsa-root.pem, the checkpoint's signature (merkle_verify.py
# and openssl pkeyutl, as REPORT.html says), the ledger key, the inclusion
# proof of every events.jsonl line, REPORT.json agreeing with the manifests,
# REPORT.html escaping the case title and loading nothing from outside; and
# every item's chain of custody ends with its "exported" event, the case's
# with one naming all the items.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/lib_export.sh"
command -v ffmpeg >/dev/null || exit 77

t_start_server --organization "Example Police Dept."
LEGAL=$(t_token legal --user lou)
C=INC-6000
x_case "$C" 'Stop <b>on</b> Main & 5th "night"'
t_make_mp4 "$T/front door.mp4" 2
t_make_mp4 "$T/car.mp4" 3
printf 'officer notes\n' >"$T/notes.txt"
E1=$(t_put "$ADMIN" "$T/front door.mp4" cam-1)
E2=$(t_put "$ADMIN" "$T/car.mp4" cam-2)
E3=$(t_put "$ADMIN" "$T/notes.txt" cam-1)
x_link "$C" "$E1" "$E2" "$E3"
x_ready "$E1" "$E2" "$E3"

x_export "$C" "{\"renditions\":[\"master\",\"access\"],\"clips\":[{\"evidence\":\"$E1\",\"start\":\"0.5\",\"end\":\"00:00:01.500\"}]}" "$LEGAL"
X=$XID
assert_eq "/v1/exports/$X" "$(hdr Location)" "Location"
assert_eq queued "$(jq -r .state <<<"$BODY")" "a new export is queued"
assert_eq lou "$(jq -r .requested_by.user <<<"$BODY")" "requested_by"
x_done "$X"
REC=$BODY
BAG=$(jq -r .bag <<<"$REC")
assert_eq "custos-$C-$X" "$BAG" "the bag's name"
assert_eq 1 "$(jq -r .progress <<<"$REC")" "progress when done"
TAG=$(jq -r .tagmanifest_sha256 <<<"$REC")

# ---- the tar ---------------------------------------------------------------
curl -sS -D "$T/h" -o "$T/bag.tar" -w '%{http_code}' -H "$(auth "$LEGAL")" "$URL/v1/exports/$X" >"$T/st"
assert_eq 200 "$(cat "$T/st")" "download"
assert_eq application/x-tar "$(t_header Content-Type "$T/h")" "Content-Type"
assert_eq "\"$TAG\"" "$(t_header ETag "$T/h")" "ETag is the tag manifest's SHA-256"
assert_eq bytes "$(t_header Accept-Ranges "$T/h")" "Accept-Ranges"
assert_match "filename=\"$BAG.tar\"" "$(t_header Content-Disposition "$T/h")" "Content-Disposition"
assert_eq "$(jq -r .tar_size <<<"$REC")" "$(stat -c %s "$T/bag.tar")" "tar size as recorded"
tar -tvf "$T/bag.tar" >"$T/list" || fail "GNU tar cannot list the tar"
assert_eq "$BAG/" "$(head -n 1 "$T/list" | awk '{print $6}')" "the bag's directory comes first"
[ "$(awk '{print $6}' "$T/list" | grep -vc "^$BAG/")" = 0 ] || fail "an entry outside $BAG/: $(cat "$T/list")"
awk '{print $2}' "$T/list" | sort -u | tr '\n' ' ' | grep -qx 'root/root ' || fail "owners: $(awk '{print $2}' "$T/list" | sort -u)"
mkdir "$T/x"
tar -xf "$T/bag.tar" -C "$T/x" || fail "GNU tar cannot extract the tar"
B="$T/x/$BAG"
cd "$B"

# ---- BagIt -----------------------------------------------------------------
assert_eq "$(printf 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n' | sha256sum)" "$(sha256sum <bagit.txt)" "bagit.txt"
sha256sum --quiet --strict -c manifest-sha256.txt || fail "sha256sum -c manifest-sha256.txt"
sha512sum --quiet --strict -c manifest-sha512.txt || fail "sha512sum -c manifest-sha512.txt"
sha256sum --quiet --strict -c tagmanifest-sha256.txt || fail "sha256sum -c tagmanifest-sha256.txt"
assert_eq "$TAG" "$(sha256sum tagmanifest-sha256.txt | cut -c1-64)" "the record's tag manifest hash"
assert_eq "$(find data -type f | LC_ALL=C sort)" "$(cut -c67- manifest-sha256.txt)" "manifest-sha256 lists every payload file, sorted"
assert_eq "$(find data -type f | LC_ALL=C sort)" "$(cut -c131- manifest-sha512.txt)" "manifest-sha512 lists every payload file, sorted"
assert_eq "$(find . -type f ! -path './data/*' ! -name tagmanifest-sha256.txt | sed 's|^\./||' | LC_ALL=C sort)" \
  "$(cut -c67- tagmanifest-sha256.txt)" "the tag manifest lists every tag file, sorted"
bytes=$(find data -type f -printf '%s\n' | awk '{s += $1} END {print s}')
files=$(find data -type f | wc -l)
assert_eq 8 "$files" "payload: 3 originals, master and access of 2 recordings, 1 clip"
info() { grep "^$1: " bag-info.txt | cut -d' ' -f2-; }
assert_eq "$bytes.$files" "$(info Payload-Oxum)" "Payload-Oxum"
assert_eq "$bytes.$files" "$(jq -r .payload_oxum <<<"$REC")" "the record's payload_oxum"
assert_eq "Example Police Dept." "$(info Source-Organization)" "Source-Organization"
assert_eq "$C" "$(info External-Identifier)" "External-Identifier"
assert_eq lou "$(info Exported-By)" "Exported-By"
assert_eq "$X" "$(info X-Custos-Export-Id)" "X-Custos-Export-Id"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' "$(info Bagging-Date)" "Bagging-Date"
assert_eq "$(jq -r .size custody/sth.json)" "$(info X-Custos-Tree-Size)" "X-Custos-Tree-Size"
if [ -f "$IT_DIR/bagit_validate.py" ]; then
  python3 "$IT_DIR/bagit_validate.py" --all-tags "$B" >"$T/bv" || fail "bagit_validate.py: $(cat "$T/bv")"
fi
for f in "data/$E1/original/front_door.mp4" "data/$E1/master/front_door.mkv" "data/$E1/access/front_door.mp4" \
  "data/$E1/clips/clip-copy-500-1500.mp4" "data/$E2/original/car.mp4" "data/$E2/master/car.mkv" \
  "data/$E2/access/car.mp4" "data/$E3/original/notes.txt"; do
  [ -f "$f" ] || fail "no $f in the bag: $(find data -type f)"
done
cmp "data/$E1/original/front_door.mp4" "$T/front door.mp4" || fail "the original is not the bytes uploaded"
cmp "data/$E3/original/notes.txt" "$T/notes.txt" || fail "the note is not the bytes uploaded"

# ---- time-stamps -------------------------------------------------------------
for e in "$E1" "$E2" "$E3"; do
  sha=$(grep " data/$e/original/" manifest-sha256.txt | cut -c1-64)
  openssl ts -verify -digest "$sha" -in "custody/$e/original.tsr" -CAfile custody/tsa-root.pem >"$T/ts" 2>&1 ||
    fail "openssl ts -verify of $e's token: $(cat "$T/ts")"
  grep -q 'Verification: OK' "$T/ts" || fail "ts -verify for $e: $(cat "$T/ts")"
done
[ -f custody/checkpoint.tsr ] || fail "the head's token is missing"
openssl ts -verify -digest "$(sha256sum custody/checkpoint.txt | cut -c1-64)" -in custody/checkpoint.tsr \
  -CAfile custody/tsa-root.pem >"$T/ts" 2>&1 || fail "openssl ts -verify of the head's token: $(cat "$T/ts")"

# ---- the head, the key, the proofs ------------------------------------------
key=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/key")
PUB=$(jq -r .public_key <<<"$key")
assert_eq "$(jq -r .vkey <<<"$key")" "$(cat custody/ledger-key.txt)" "ledger-key.txt is the server's vkey"
assert_eq "$(jq -r .pem <<<"$key")" "$(cat custody/ledger-key.pem)" "ledger-key.pem is the server's key"
MV vkey "$(cat custody/ledger-key.txt)" "$(jq -r .origin custody/sth.json)" "$PUB" || fail "the vkey"
read -r origin size root < <(MV checkpoint custody/checkpoint.txt "$PUB") || fail "the checkpoint does not verify"
assert_eq "$(jq -r .size custody/sth.json) $(jq -r .root custody/sth.json)" "$size $root" "sth.json is the checkpoint"
assert_eq "$(jq -r .checkpoint custody/sth.json)" "$(cat custody/checkpoint.txt)" "checkpoint.txt is sth.json's"
head -n 3 custody/checkpoint.txt >"$T/signed.txt"
tail -n 1 custody/checkpoint.txt | awk '{print $3}' | base64 -d | tail -c 64 >"$T/sig.bin"
openssl pkeyutl -verify -pubin -inkey custody/ledger-key.pem -rawin -in "$T/signed.txt" -sigfile "$T/sig.bin" \
  >"$T/pk" 2>&1 || fail "REPORT.html's openssl recipe for the signature: $(cat "$T/pk")"
n=$(x_proofs "$B")
[ "$n" -ge 12 ] || fail "only $n events proved"
for e in "$E1" "$E2" "$E3"; do
  types=$(jq -r .data "custody/$e/events.jsonl" | while read -r d; do base64 -d <<<"$d" | jq -r .type; done | tr '\n' ' ')
  assert_match '^ingested ' "$types" "$e's events start with ingested"
  assert_match 'linked' "$types" "$e's events hold its link to the case"
  assert_match 'timestamped' "$types" "$e's events hold its time-stamp"
done

# ---- REPORT.json and REPORT.html ---------------------------------------------
jq -e . REPORT.json >/dev/null || fail "REPORT.json is not JSON"
assert_eq "$C" "$(jq -r .case.id REPORT.json)" "REPORT.json case"
assert_eq "$X" "$(jq -r .export.id REPORT.json)" "REPORT.json export"
assert_eq "$bytes.$files" "$(jq -r .export.payload_oxum REPORT.json)" "REPORT.json payload_oxum"
assert_eq "$(jq -c . custody/sth.json | jq -c '{origin, size, root}')" "$(jq -c '.sth | {origin, size, root}' REPORT.json)" "REPORT.json sth"
assert_eq "$(printf '%s\n' "$E1" "$E2" "$E3" | sort)" "$(jq -r '.items[].evidence.id' REPORT.json)" "REPORT.json items, in id order"
assert_eq "$(cat manifest-sha256.txt)" "$(jq -r '.items[].files[] | "\(.sha256)  \(.path)"' REPORT.json | LC_ALL=C sort -k2)" \
  "REPORT.json files agree with manifest-sha256.txt"
assert_eq "$(cat manifest-sha512.txt)" "$(jq -r '.items[].files[] | "\(.sha512)  \(.path)"' REPORT.json | LC_ALL=C sort -k2)" \
  "REPORT.json files agree with manifest-sha512.txt"
jq -r '.items[].files[] | "\(.size) \(.path)"' REPORT.json | while read -r sz p; do
  assert_eq "$sz" "$(stat -c %s "$p")" "REPORT.json size of $p"
done
assert_eq "null" "$(jq -c '[.items[].files[] | select(.ledger_index == null)] | first' REPORT.json)" "every file names its ledger event"
assert_eq "clip:copy:500:1500" "$(jq -r '.items[].files[] | select(.path | test("clips/")) | .kind' REPORT.json)" "the clip's kind"
assert_eq "master access" "$(jq -r --arg e "$E3" '.items[] | select(.evidence.id == $e) | .skipped[].kind' REPORT.json | tr '\n' ' ' | sed 's/ $//')" \
  "the note has no master or access copy: listed as skipped"
assert_eq "null" "$(jq -c '.items[0].evidence.renditions' REPORT.json)" "evidence records without renditions"
evs=$(jq '[.items[].events[]] | length' REPORT.json)
assert_eq "$n" "$evs" "REPORT.json lists the same events as events.jsonl"
grep -q 'Stop &lt;b&gt;on&lt;/b&gt; Main &amp; 5th &quot;night&quot;' REPORT.html || fail "REPORT.html does not show the escaped title"
grep -q '<b>on</b>' REPORT.html && fail "REPORT.html carries the title unescaped"
grep -Eiq '(src|href)=|@import|url\(' REPORT.html && fail "REPORT.html loads something: $(grep -Eio '(src|href)=[^ >]*' REPORT.html | head -3)"
grep -q "sha256sum -c manifest-sha256.txt" REPORT.html || fail "REPORT.html: no sha256sum step"
grep -q "openssl ts -verify -digest $(grep " data/$E2/original/" manifest-sha256.txt | cut -c1-64) -in custody/$E2/original.tsr -CAfile custody/tsa-root.pem" REPORT.html ||
  fail "REPORT.html: no openssl ts -verify step for $E2"
grep -q "custos verify" REPORT.html || fail "REPORT.html: no custos verify step"
cd "$T"

# ---- the exported events ---------------------------------------------------------
for e in "$E1" "$E2" "$E3"; do
  call -H "$(auth "$LEGAL")" "$URL/v1/evidence/$e/events"
  # (the clip's frame check may come after it: a clip_checked event)
  last=$(jq -c --arg x "$X" '[.events[].event | select(.type == "exported" and .export == $x)] | last' <<<"$BODY")
  assert_eq exported "$(jq -r .type <<<"$last")" "$e's exported event is in its chain"
  assert_eq "$X $C $TAG lou" "$(jq -r '"\(.export) \(.case) \(.tagmanifest_sha256) \(.actor.user)"' <<<"$last")" "$e's exported event"
done
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=0&end=999"
caseev=$(jq -c --arg x "$X" '[.entries[].event | select(.type == "exported" and .export == $x and .evidence == null)]' <<<"$BODY")
assert_eq 1 "$(jq length <<<"$caseev")" "one case event"
assert_eq "$(printf '%s\n' "$E1" "$E2" "$E3" | sort | tr '\n' ' ')" "$(jq -r '.[0].items[]' <<<"$caseev" | tr '\n' ' ')" "the case event's items"
assert_eq "$bytes.$files $TAG" "$(jq -r '.[0] | "\(.payload_oxum) \(.tagmanifest_sha256)"' <<<"$caseev")" "the case event's oxum and tag manifest"

# ---- listing -----------------------------------------------------------------------
call -H "$(auth "$LEGAL")" "$URL/v1/exports?case=$C"
assert_eq 200 "$ST" "list"
assert_eq "$X done" "$(jq -r '.items[] | "\(.id) \(.state)"' <<<"$BODY")" "the case's exports"
call -H "$(auth "$LEGAL")" "$URL/v1/exports?case=NO-SUCH-CASE"
assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "another case has none"

# custos verify BAG, when this build has it, agrees.
if "$CUSTOS" verify --help 2>&1 | grep -q 'verify BAG'; then
  "$CUSTOS" verify "$B" >"$T/v" 2>&1 || fail "custos verify of the bag: $(cat "$T/v")"
  "$CUSTOS" verify "$T/bag.tar" >"$T/v" 2>&1 || fail "custos verify of the tar: $(cat "$T/v")"
fi
t_stop_server
