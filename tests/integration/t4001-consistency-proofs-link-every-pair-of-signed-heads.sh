#!/usr/bin/env bash
# t4001: the ledger only grows: every pair of signed tree heads (each one's
# checkpoint signature checked) is linked by a consistency proof that the
# independent verifier accepts, as is every smaller tree (its root
# recomputed from the entries) to the latest head; a proof with one hex
# digit flipped, or claimed for the wrong roots, is refused. Bad parameters
# are 400 with a JSON error; a recorder may read no proof material; a
# reviewer may read heads, keys and proofs but not the entries.
. "$(dirname "$0")/lib.sh"

t_start_server
REC=$(t_token recorder --device cam-41)
REV=$(t_token reviewer --user rita)
LEGAL=$(t_token legal --user lee)
[ -n "$REC" ] && [ -n "$REV" ] && [ -n "$LEGAL" ] || fail "could not create the tokens"
PUB=$(curl -sS -H "$(auth "$REV")" "$URL/v1/ledger/key" | jq -r .public_key)
assert_match '^[0-9a-f]{64}$' "$PUB" "the ledger's public key"

# Uploads $1..$2, and waits for their time-stamps.
batch() {
  local i id ids=()
  for i in $(seq "$1" "$2"); do
    t_noise $((500 + i)) "$T/f$i"
    id=$(t_put "$REC" "$T/f$i" cam-41)
    ids+=("$id")
  done
  for id in "${ids[@]}"; do t_wait_200 "$URL/v1/evidence/$id/timestamp" "$T/tok"; done
}

# 4 tokens (the first start's and three), then three per upload (ingested,
# probed, timestamped).
batch 1 2
STH1=$(t_sth_at_least 10)
assert_eq 10 "$(jq .size <<<"$STH1")" "size of the first head"
batch 3 5
STH2=$(t_sth_at_least 19)
assert_eq 19 "$(jq .size <<<"$STH2")" "size of the second head"
S1=10 S2=19 R1=$(jq -r .root <<<"$STH1") R2=$(jq -r .root <<<"$STH2")

# ---- the two heads, as a reviewer sees them ---------------------------------
call -H "$(auth "$REV")" "$URL/v1/ledger/proof/consistency?first=$S1&second=$S2"
assert_eq 200 "$ST" "consistency proof $S1 -> $S2 for a reviewer"
assert_match '^application/json' "$(hdr Content-Type)" "consistency proof Content-Type"
assert_eq "$S1 $S2" "$(jq -r '"\(.first) \(.second)"' <<<"$BODY")" "first and second in the proof"
mapfile -t P < <(jq -r '.consistency_path[]' <<<"$BODY")
[ "${#P[@]}" -gt 0 ] || fail "an empty consistency proof between different sizes"
MV consistency "$S1" "$S2" "$R1" "$R2" "${P[@]}" >/dev/null || fail "the consistency proof $S1 -> $S2 does not verify: $BODY"
# One flipped hex digit anywhere in the proof is refused.
for k in $(seq 0 $((${#P[@]} - 1))); do
  bad=("${P[@]}")
  c=${bad[$k]:20:1}
  bad[$k]=${bad[$k]:0:20}$([ "$c" = f ] && echo e || echo f)${bad[$k]:21}
  MV consistency "$S1" "$S2" "$R1" "$R2" "${bad[@]}" >/dev/null && fail "a proof with hash $k tampered verifies"
done
MV consistency "$S1" "$S2" "$R2" "$R1" "${P[@]}" >/dev/null && fail "the proof verifies with the roots swapped"
MV consistency "$S1" "$S2" "$R1" "$R1" "${P[@]}" >/dev/null && fail "the proof verifies for an unchanged root"
MV consistency "$S1" "$S2" "$R1" "$R2" "${P[@]:1}" >/dev/null && fail "a shortened proof verifies"

# ---- every signed head, and every pair of them ------------------------------
# Heads are signed at most once a second, so some sizes have none.
HEADS=()
declare -A ROOT
for n in $(seq 1 "$S2"); do
  call -H "$(auth "$REV")" "$URL/v1/ledger/sth?size=$n"
  if [ "$ST" = 404 ]; then
    assert_eq not_found "$(jq -r .error <<<"$BODY")" "error of sth?size=$n"
    continue
  fi
  assert_eq 200 "$ST" "GET sth?size=$n"
  assert_eq "$n" "$(jq .size <<<"$BODY")" "size of sth?size=$n"
  jq -j .checkpoint <<<"$BODY" >"$T/note"
  out=$(MV checkpoint "$T/note" "$PUB") || fail "the head at $n is not signed by the ledger key"
  assert_eq "$n $(jq -r .root <<<"$BODY")" "${out#* }" "the checkpoint at $n names the head's size and root"
  HEADS+=("$n")
  ROOT[$n]=$(jq -r .root <<<"$BODY")
done
echo "signed heads at sizes: ${HEADS[*]}"
[[ " ${HEADS[*]} " == *" $S1 "* && " ${HEADS[*]} " == *" $S2 "* ]] || fail "the heads seen are not stored by size"
assert_eq "$R1" "${ROOT[$S1]}" "the first head, fetched again by size"
for a in "${HEADS[@]}"; do
  for b in "${HEADS[@]}"; do
    [ "$a" -lt "$b" ] || continue
    call -H "$(auth "$REV")" "$URL/v1/ledger/proof/consistency?first=$a&second=$b"
    assert_eq 200 "$ST" "consistency proof $a -> $b"
    mapfile -t P < <(jq -r '.consistency_path[]' <<<"$BODY")
    MV consistency "$a" "$b" "${ROOT[$a]}" "${ROOT[$b]}" "${P[@]}" >/dev/null ||
      fail "the signed heads at $a and $b are not consistent: $BODY"
  done
done
# first == second: an empty proof.
call -H "$(auth "$REV")" "$URL/v1/ledger/proof/consistency?first=$S2&second=$S2"
assert_eq 200 "$ST" "consistency proof $S2 -> $S2"
assert_eq 0 "$(jq '.consistency_path | length' <<<"$BODY")" "length of the proof from a tree to itself"

# ---- every smaller tree, its root from the entries, to the latest head ------
call -H "$(auth "$LEGAL")" "$URL/v1/ledger/entries?start=0&end=$((S2 - 1))"
assert_eq 200 "$ST" "entries for a legal token"
jq -r '.entries[].data' <<<"$BODY" >"$T/data"
assert_eq "$S2" "$(wc -l <"$T/data")" "entries"
for m in $(seq 1 $((S2 - 1))); do
  rm_=$(head -n "$m" "$T/data" | MV root)
  call -H "$(auth "$REV")" "$URL/v1/ledger/proof/consistency?first=$m&second=$S2"
  assert_eq 200 "$ST" "consistency proof $m -> $S2"
  mapfile -t P < <(jq -r '.consistency_path[]' <<<"$BODY")
  MV consistency "$m" "$S2" "$rm_" "$R2" "${P[@]}" >/dev/null ||
    fail "the tree of $m entries (root $rm_) is not proved consistent with the head at $S2: $BODY"
  [ -z "${ROOT[$m]:-}" ] || assert_eq "${ROOT[$m]}" "$rm_" "the head at $m has the root of its first $m entries"
done

# ---- bad parameters: 400 with a JSON error ----------------------------------
bad400() { # PATH-AND-QUERY WHAT
  call -H "$(auth "$ADMIN")" "$URL/v1/ledger/$1"
  assert_eq 400 "$ST" "$2 ($1)"
  assert_match '^application/json' "$(hdr Content-Type)" "Content-Type of the 400 for $1"
  assert_eq invalid "$(jq -r .error <<<"$BODY")" "error of $1"
  [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "no detail in the 400 for $1: $BODY"
}
bad400 "proof/consistency?first=0&second=$S2" "first=0"
bad400 "proof/consistency?first=$S2&second=$S1" "first > second"
bad400 "proof/consistency?first=1&second=$((S2 + 1000))" "second beyond the ledger"
bad400 "proof/consistency?first=1" "second missing"
bad400 "proof/consistency?second=3" "first missing"
bad400 "proof/consistency?first=one&second=3" "non-numeric first"
bad400 "proof/consistency?first=1&second=3x" "trailing garbage in second"
bad400 "proof/inclusion?index=$S1&size=$S1" "index = size"
bad400 "proof/inclusion?index=9&size=3" "index > size"
bad400 "proof/inclusion?index=0&size=$((S2 + 1000))" "size beyond the ledger"
bad400 "proof/inclusion?index=0" "size missing"
bad400 "proof/inclusion?size=3" "index missing"
bad400 "proof/inclusion?index=-1&size=3" "negative index"
bad400 "proof/inclusion?index=0&size=1e3" "size in exponent notation"
bad400 "proof/inclusion?index=0&size=" "empty size"
bad400 "sth?size=abc" "non-numeric sth size"
bad400 "timestamp?size=abc" "non-numeric timestamp size"
bad400 "timestamp" "timestamp size missing"
bad400 "entries?start=0" "end missing"
bad400 "entries?start=3&end=1" "end before start"
bad400 "entries?start=$((S2 + 5))&end=$((S2 + 9))" "start beyond the ledger"
bad400 "entries?start=x&end=1" "non-numeric start"

# ---- who may read what ------------------------------------------------------
st() { curl -sS -o "$T/b" -w '%{http_code}' -H "$(auth "$1")" "$URL/v1/ledger/$2"; }
for p in sth checkpoint key "entries?start=0&end=1" "proof/inclusion?index=0&size=$S1" \
         "proof/consistency?first=1&second=$S1" "timestamp?size=$S1"; do
  assert_eq 403 "$(st "$REC" "$p")" "a recorder token on /v1/ledger/$p"
  assert_eq forbidden "$(jq -r .error "$T/b")" "error for a recorder on /v1/ledger/$p"
  assert_eq 401 "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/v1/ledger/$p")" "no token on /v1/ledger/$p"
done
for p in sth checkpoint key "proof/inclusion?index=0&size=$S1" "proof/consistency?first=1&second=$S1"; do
  assert_eq 200 "$(st "$REV" "$p")" "a reviewer token on /v1/ledger/$p"
done
assert_eq 403 "$(st "$REV" "entries?start=0&end=1")" "a reviewer token on /v1/ledger/entries"
assert_eq forbidden "$(jq -r .error "$T/b")" "error for a reviewer on entries"
ev=$(curl -sS -H "$(auth "$LEGAL")" "$URL/v1/evidence?limit=1" | jq -r '.items[0].id')
assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' -H "$(auth "$LEGAL")" "$URL/v1/evidence/$ev/events")" \
  "a legal token on an evidence's events"
assert_eq 403 "$(curl -sS -o /dev/null -w '%{http_code}' -H "$(auth "$REV")" "$URL/v1/evidence/$ev/events")" \
  "a reviewer token on an evidence's events"
assert_eq 200 "$(st "$LEGAL" "entries?start=0&end=1")" "a legal token on /v1/ledger/entries"
assert_eq 2 "$(jq '.entries | length' "$T/b")" "entries 0..1 (end inclusive)"

t_stop_server
