#!/usr/bin/env bash
# t4006: SIGKILL while 8 clients upload at once leaves a ledger without gaps
# or doubles: after a restart every acknowledged upload is evidence, every
# evidence record has exactly one "ingested" event (and the ledger exactly
# as many as there are records), the entries are 0..size-1 with leaf hashes
# SHA-256(0x00 || data), the stamps queued before the crash all arrive, and
# a fresh signed head (same key) covers the whole ledger with the root of
# its entries and is proved consistent with the heads seen before the kill.
. "$(dirname "$0")/lib.sh"

t_start_server
PUB=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/key" | jq -r .public_key)
for i in 1 2 3; do
  t_noise 1000 "$T/pre$i"
  t_put "$ADMIN" "$T/pre$i" cam-46 >/dev/null
done
STH0=$(t_sth_at_least 4)

# ---- 8 clients upload small files in a loop until the server is gone ---------
mkdir -p "$T/w"
writer() { # K: each acknowledged upload goes to $T/w/K.acked as "ID SHA256"
  local f="$T/w/$1.bin" h="$T/w/$1.h" st id
  while :; do
    t_noise $((100 + RANDOM % 4000)) "$f"
    st=$(curl -sS -m 10 -o /dev/null -D "$h" -w '%{http_code}' -X POST -H 'Tus-Resumable: 1.0.0' \
      -H 'Content-Type: application/offset+octet-stream' -H "Authorization: Bearer $ADMIN" \
      -H "Upload-Length: $(stat -c %s "$f")" -H "Upload-Metadata: device_id $(b64 "cam-w$1")" \
      --data-binary "@$f" "$URL/v1/uploads" 2>/dev/null) || break
    [ "$st" = 201 ] || { echo "writer $1: HTTP $st" >>"$T/w/errors"; break; }
    id=$(t_header Custos-Evidence-Id "$h")
    [ -n "$id" ] || { echo "writer $1: 201 without an evidence id" >>"$T/w/errors"; break; }
    echo "$id $(sha256sum "$f" | cut -d' ' -f1)" >>"$T/w/$1.acked"
  done
}
PIDS=()
for k in 1 2 3 4 5 6 7 8; do
  writer "$k" &
  PIDS+=($!)
  t_bg $!
done
sleep "$(python3 -c 'import random; print(round(random.uniform(0.8, 2.5), 2))')"
STH_PRE=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/sth")
t_kill_server
for p in "${PIDS[@]}"; do wait "$p" || true; done
[ ! -s "$T/w/errors" ] || fail "an upload was refused before the kill: $(cat "$T/w/errors")"
cat "$T"/w/*.acked >"$T/acked" 2>/dev/null || true
ACKED=$(wc -l <"$T/acked")
[ "$ACKED" -gt 0 ] || fail "no upload was acknowledged before the kill"
echo "acknowledged uploads before the kill: $ACKED; last head seen: size $(jq .size <<<"$STH_PRE")"

t_start_server
assert_eq "$PUB" "$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/key" | jq -r .public_key)" "the ledger key after the restart"

# ---- every record, and its chain of custody ---------------------------------
cursor=""
: >"$T/ids"
for _ in $(seq 1 100); do
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence?limit=1000${cursor:+&cursor=$cursor}"
  assert_eq 200 "$ST" "evidence listing"
  jq -r '.items[] | "\(.id) \(.sha256)"' <<<"$BODY" >>"$T/ids"
  cursor=$(jq -r '.next_cursor // empty' <<<"$BODY")
  [ -n "$cursor" ] || break
done
E=$(wc -l <"$T/ids")
assert_eq "$E" "$(sort -u "$T/ids" | wc -l)" "records listed twice"
assert_eq "$E" "$(metric custos_evidence)" "custos_evidence"
missing=$(sort "$T/acked" | comm -23 - <(sort "$T/ids"))
[ -z "$missing" ] || fail "acknowledged uploads missing (or with another hash) after the restart: $missing"
echo "evidence records after the restart: $E"
while read -r id _; do
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id/events"
  assert_eq 200 "$ST" "events of $id"
  assert_eq 1 "$(jq '[.events[] | select(.event.type == "ingested")] | length' <<<"$BODY")" "ingested events of $id"
  echo "$id $(jq '.events[] | select(.event.type == "ingested") | .index' <<<"$BODY")" >>"$T/ingested.byrecord"
done <"$T/ids"

# ---- the ledger ---------------------------------------------------------------
# all_entries N: entries 0..N-1 as one JSON array in $T/entries.json.
all_entries() {
  local start=0
  : >"$T/pages"
  while [ "$start" -lt "$1" ]; do
    call -H "$(auth "$ADMIN")" "$URL/v1/ledger/entries?start=$start&end=$(($1 - 1))"
    assert_eq 200 "$ST" "entries from $start"
    local n
    n=$(jq '.entries | length' <<<"$BODY")
    [ "$n" -gt 0 ] || fail "an empty page of entries from $start"
    jq -c '.entries[]' <<<"$BODY" >>"$T/pages"
    start=$((start + n))
  done
  jq -s . "$T/pages" >"$T/entries.json"
}
# The stamps queued before the crash all arrive.
for _ in $(seq 1 60); do
  n=$(metric custos_ledger_entries)
  all_entries "$n"
  unstamped=$(jq -r '.[] | select(.event.type == "timestamped") | .event.evidence' "$T/entries.json" | sort -u |
    comm -13 - <(cut -d' ' -f1 "$T/ids" | sort) | wc -l)
  [ "$unstamped" = 0 ] && break
  sleep 0.5
done
[ "$unstamped" = 0 ] || fail "$unstamped records still have no timestamped event 30 s after the restart"

# A fresh head covers the whole ledger (heads follow appends within a second).
for _ in $(seq 1 100); do
  n=$(metric custos_ledger_entries)
  STH=$(t_sth_at_least "$n" 15)
  [ "$(jq .size <<<"$STH")" = "$(metric custos_ledger_entries)" ] && break
  sleep 0.1
done
SIZE=$(jq .size <<<"$STH")
assert_eq "$(metric custos_ledger_entries)" "$SIZE" "the fresh head's size is the ledger's"
ROOT=$(jq -r .root <<<"$STH")
all_entries "$SIZE"
assert_eq "$SIZE" "$(jq length "$T/entries.json")" "entries under the fresh head"
assert_eq true "$(jq '[.[].index] == [range(0; length)]' "$T/entries.json")" "entry indexes are 0..size-1, no gap"
jq -r '.[].data' "$T/entries.json" | MV leaves >"$T/leaves.mine"
jq -r '.[].leaf_hash' "$T/entries.json" >"$T/leaves.server"
cmp -s "$T/leaves.mine" "$T/leaves.server" || fail "a leaf_hash is not SHA-256(0x00 || data): $(diff "$T/leaves.mine" "$T/leaves.server" | head -5)"
assert_eq "$ROOT" "$(jq -r '.[].data' "$T/entries.json" | MV root)" "the fresh head's root is the root of all entries"
jq -j .checkpoint <<<"$STH" >"$T/note"
assert_eq "$(jq -r .origin <<<"$STH") $SIZE $ROOT" "$(MV checkpoint "$T/note" "$PUB")" "the fresh head's signed checkpoint"

# Exactly one ingested event per record, the same one /events shows.
jq -r '.[] | select(.event.type == "ingested") | "\(.event.evidence) \(.index)"' "$T/entries.json" | sort >"$T/ingested.byledger"
assert_eq "$E" "$(wc -l <"$T/ingested.byledger")" "ingested events in the ledger = evidence records"
sort "$T/ingested.byrecord" | cmp -s - "$T/ingested.byledger" ||
  fail "the ledger's ingested events are not the records' ones: $(sort "$T/ingested.byrecord" | diff - "$T/ingested.byledger" | head -5)"
jq -r '.[] | select(.event.type == "ingested") | "\(.event.evidence) \(.event.sha256)"' "$T/entries.json" | sort |
  cmp -s - <(sort "$T/ids") || fail "the ingested events' hashes are not the records' ones"
dups=$(jq -r '.[] | select(.event.type == "timestamped") | .event.evidence' "$T/entries.json" | sort | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups records have more than one timestamped event (a stamp job re-run after the kill)"
dups=$(jq -r '.[] | select(.event.type == "probed") | .event.evidence' "$T/entries.json" | sort | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups records have more than one probed event (a probe job re-run after the kill)"

# ---- the heads before the kill are kept, and the fresh one extends them ------
for h in "$STH0" "$STH_PRE"; do
  s=$(jq .size <<<"$h")
  r=$(jq -r .root <<<"$h")
  call -H "$(auth "$ADMIN")" "$URL/v1/ledger/sth?size=$s"
  assert_eq 200 "$ST" "the head at $s seen before the kill, after the restart"
  assert_eq "$r" "$(jq -r .root <<<"$BODY")" "root of the head at $s after the restart"
  [ "$s" -le "$SIZE" ] || fail "the fresh head ($SIZE) is smaller than the one at $s seen before the kill"
  call -H "$(auth "$ADMIN")" "$URL/v1/ledger/proof/consistency?first=$s&second=$SIZE"
  assert_eq 200 "$ST" "consistency proof $s -> $SIZE"
  mapfile -t P < <(jq -r '.consistency_path[]' <<<"$BODY")
  MV consistency "$s" "$SIZE" "$r" "$ROOT" "${P[@]}" >/dev/null ||
    fail "the head at $s seen before the kill is not consistent with the fresh head at $SIZE: $BODY"
  assert_eq "$r" "$(jq -r '.[].data' "$T/entries.json" | head -n "$s" | MV root)" "the head at $s is the root of the first $s entries"
done

t_stop_server
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
