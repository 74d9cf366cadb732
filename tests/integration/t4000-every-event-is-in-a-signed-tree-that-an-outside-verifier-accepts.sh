#!/usr/bin/env bash
# t4000: every ledger event is covered by a signed tree head that a verifier
# sharing no code with the server (merkle_verify.py, written from RFC 9162)
# accepts: each entry's leaf_hash is SHA-256(0x00 || data) (recomputed with
# openssl dgst), the root of all entries (the RFC recursion) is the STH's
# root, the C2SP checkpoint is signed by the Ed25519 key of /v1/ledger/key
# under the key id SHA-256(origin || 0x0A || 0x01 || pub)[:4], and every
# index has an inclusion proof at the STH's size that verifies. The events
# are what happened: two tokens issued, one ingested, one probed and one
# timestamped per upload. A tampered proof, note or key is refused by the verifier.
. "$(dirname "$0")/lib.sh"

MV selftest >/dev/null || fail "merkle_verify.py selftest fails: $(MV selftest 2>&1 | tail -5)"

t_start_server
REC=$(t_token recorder --device cam-40)
[ -n "$REC" ] || fail "could not create a recorder token"

N=3
declare -A SHA
IDS=()
for i in $(seq 1 $N); do
  t_noise $((1000 * i + 17)) "$T/f$i"
  id=$(t_put "$REC" "$T/f$i" cam-40)
  IDS+=("$id")
  SHA[$id]=$(sha256sum "$T/f$i" | cut -d' ' -f1)
done
# A token is stored with its "timestamped" event, in one batch.
for id in "${IDS[@]}"; do t_wait_200 "$URL/v1/evidence/$id/timestamp" "$T/tok"; done

# The admin token of the first start, the recorder's, and three per upload
# (ingested, probed, timestamped).
WANT=$((2 + 3 * N))
sth=$(t_sth_at_least "$WANT")
SIZE=$(jq -r .size <<<"$sth")
ROOT=$(jq -r .root <<<"$sth")
ORIGIN=$(jq -r .origin <<<"$sth")
assert_eq "$WANT" "$SIZE" "STH size (nothing else appends)"
assert_match '^[0-9a-f]{64}$' "$ROOT" "STH root"

# ---- the entries, leaf by leaf ----------------------------------------------
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=0&end=$((SIZE - 1))"
assert_eq 200 "$ST" "GET entries"
ENTRIES=$BODY
assert_eq "$SIZE" "$(jq '.entries | length' <<<"$ENTRIES")" "number of entries"
assert_eq "$(seq -s ' ' 0 $((SIZE - 1)))" "$(jq -r '[.entries[].index] | map(tostring) | join(" ")' <<<"$ENTRIES")" \
  "entry indexes are 0..size-1 in order"
for i in $(seq 0 $((SIZE - 1))); do
  data=$(jq -r ".entries[$i].data" <<<"$ENTRIES")
  base64 -d <<<"$data" >"$T/leaf.bin" || fail "entry $i: data is not base64"
  want=$({ printf '\0'; cat "$T/leaf.bin"; } | openssl dgst -sha256 -r | cut -c1-64)
  assert_eq "$want" "$(jq -r ".entries[$i].leaf_hash" <<<"$ENTRIES")" "entry $i: leaf_hash = SHA-256(0x00 || data)"
  # The event shown is the data, parsed.
  assert_eq "$(jq -cS . "$T/leaf.bin")" "$(jq -cS ".entries[$i].event" <<<"$ENTRIES")" "entry $i: event = data"
  LEAF[$i]=$want
done

# The root of all entries, by the RFC recursion over the data.
assert_eq "$ROOT" "$(jq -r '.entries[].data' <<<"$ENTRIES" | MV root)" "root recomputed from all entries"
# ... and the verifier's own root is not just echoing: one changed leaf changes it.
other=$(jq -r '.entries[].data' <<<"$ENTRIES" | sed '1s/^e/f/' | MV root)
[ "$other" != "$ROOT" ] || fail "a changed entry gives the same root"

# ---- the signed checkpoint --------------------------------------------------
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/key"
assert_eq 200 "$ST" "GET key"
KEY=$BODY
PUB=$(jq -r .public_key <<<"$KEY")
assert_match '^[0-9a-f]{64}$' "$PUB" "public_key"
assert_eq Ed25519 "$(jq -r .algorithm <<<"$KEY")" "key algorithm"
assert_eq "$ORIGIN" "$(jq -r .origin <<<"$KEY")" "key origin"
MV vkey "$(jq -r .vkey <<<"$KEY")" "$ORIGIN" "$PUB" || fail "the vkey does not name the origin and the key"
jq -r .pem <<<"$KEY" >"$T/pub.pem"
assert_eq "302a300506032b6570032100$PUB" "$(openssl pkey -pubin -in "$T/pub.pem" -outform DER | od -An -v -tx1 | tr -d ' \n')" \
  "the PEM is the Ed25519 SubjectPublicKeyInfo of public_key"

jq -j .checkpoint <<<"$sth" >"$T/note"
assert_eq "$(jq -r .checkpoint_sha256 <<<"$sth")" "$(sha256sum "$T/note" | cut -d' ' -f1)" \
  "checkpoint_sha256 is the SHA-256 of the note text"
out=$(MV checkpoint "$T/note" "$PUB") || fail "the checkpoint does not verify: $(MV checkpoint "$T/note" "$PUB" 2>&1)"
assert_eq "$ORIGIN $SIZE $ROOT" "$out" "the signed checkpoint names the STH's origin, size and root"
# The bare note, as transparency-log tools fetch it.
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/checkpoint"
assert_eq 200 "$ST" "GET checkpoint"
assert_match '^text/plain' "$(hdr Content-Type)" "checkpoint Content-Type"
curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/checkpoint" >"$T/note2"
cmp -s "$T/note" "$T/note2" || fail "GET /v1/ledger/checkpoint differs from the latest STH's checkpoint"
# The same head by size.
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/sth?size=$SIZE"
assert_eq 200 "$ST" "GET sth?size=$SIZE"
assert_eq "$(jq -cS . <<<"$sth")" "$(jq -cS . <<<"$BODY")" "sth?size=$SIZE is the latest head"

# The verifier refuses a note with a changed size, a changed root, or
# another key.
sed "2s/.*/$((SIZE + 1))/" "$T/note" >"$T/note.bad"
MV checkpoint "$T/note.bad" "$PUB" >/dev/null 2>&1 && fail "the verifier accepts a note whose size was changed"
awk 'NR == 3 { $0 = (substr($0, 1, 1) == "A" ? "B" : "A") substr($0, 2) } { print }' "$T/note" >"$T/note.bad"
MV checkpoint "$T/note.bad" "$PUB" >/dev/null 2>&1 && fail "the verifier accepts a note whose root was changed"
MV checkpoint "$T/note" "$(printf x | sha256sum | cut -c1-64)" >/dev/null 2>&1 &&
  fail "the verifier accepts the note under another key"

# ---- an inclusion proof for every index -------------------------------------
for i in $(seq 0 $((SIZE - 1))); do
  call -H "$(auth "$ADMIN")" "$URL/v1/ledger/proof/inclusion?index=$i&size=$SIZE"
  assert_eq 200 "$ST" "inclusion proof of $i"
  assert_eq "$i $SIZE ${LEAF[$i]}" "$(jq -r '"\(.index) \(.size) \(.leaf_hash)"' <<<"$BODY")" "inclusion proof of $i: index size leaf"
  mapfile -t P < <(jq -r '.audit_path[]' <<<"$BODY")
  MV inclusion "$i" "$SIZE" "${LEAF[$i]}" "$ROOT" "${P[@]}" >/dev/null ||
    fail "the inclusion proof of entry $i in $SIZE does not verify: $BODY"
  if [ "$i" = 0 ]; then
    # One flipped hex digit, the wrong index, the wrong leaf: all refused.
    bad=("${P[@]}")
    c=${bad[0]:7:1}
    bad[0]=${bad[0]:0:7}$([ "$c" = 0 ] && echo 1 || echo 0)${bad[0]:8}
    MV inclusion 0 "$SIZE" "${LEAF[0]}" "$ROOT" "${bad[@]}" >/dev/null && fail "a tampered inclusion proof verifies"
    MV inclusion 1 "$SIZE" "${LEAF[0]}" "$ROOT" "${P[@]}" >/dev/null && fail "the proof of 0 verifies for index 1"
    MV inclusion 0 "$SIZE" "${LEAF[1]}" "$ROOT" "${P[@]}" >/dev/null && fail "the proof of 0 verifies for leaf 1"
    MV inclusion 0 "$SIZE" "${LEAF[0]}" "$ROOT" "${P[@]:1}" >/dev/null && fail "a shortened proof verifies"
  fi
done

# ---- the events are what happened -------------------------------------------
types=$(jq -r '[.entries[].event.type] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' <<<"$ENTRIES")
assert_eq "ingested=$N probed=$N timestamped=$N token_issued=2" "$types" "event types in the ledger"
assert_eq token_issued "$(jq -r '.entries[0].event.type' <<<"$ENTRIES")" "the first event (first start)"
for id in "${IDS[@]}"; do
  ing=$(jq -c --arg id "$id" '[.entries[] | select(.event.evidence == $id and .event.type == "ingested")]' <<<"$ENTRIES")
  tsd=$(jq -c --arg id "$id" '[.entries[] | select(.event.evidence == $id and .event.type == "timestamped")]' <<<"$ENTRIES")
  assert_eq 1 "$(jq length <<<"$ing")" "ingested events of $id"
  assert_eq 1 "$(jq length <<<"$tsd")" "timestamped events of $id"
  assert_eq "${SHA[$id]}" "$(jq -r '.[0].event.sha256' <<<"$ing")" "sha256 in the ingested event of $id"
  assert_eq "${SHA[$id]}" "$(jq -r '.[0].event.sha256' <<<"$tsd")" "sha256 in the timestamped event of $id"
  [ "$(jq '.[0].index' <<<"$ing")" -lt "$(jq '.[0].index' <<<"$tsd")" ] || fail "$id was timestamped before it was ingested"
done

t_stop_server
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
