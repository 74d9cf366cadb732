#!/usr/bin/env bash
# t6102: the tombstone of an approved deletion and the job that removes its
# bytes are written together: killing the server right after approvals
# (before or while the purge runs) loses neither; after the restart every
# deleted item's bytes are gone, each purged once, and verify passes.
. "$(dirname "$0")/lib.sh"
t_start_server
LOU=$(t_token legal --user lou)
LIZ=$(t_token legal --user liz)
ids=() shas=()
for i in 1 2 3 4 5 6; do
  t_noise 200000 "$T/f$i"
  ids+=("$(t_put "$ADMIN" "$T/f$i" cam-1)")
  shas+=("$(sha256sum "$T/f$i" | cut -c1-64)")
done
obj() { echo "$HOME_DIR/objects/sha256/${1:0:2}/${1:2:2}/$1"; }
for i in 0 1 2 3 4 5; do
  call -X POST -H "$(auth "$LOU")" -H 'Content-Type: application/json' \
    -d "{\"action\":\"delete\",\"evidence\":\"${ids[$i]}\",\"reason\":\"test $i\"}" "$URL/v1/requests"
  assert_eq 202 "$ST" "request $i"
  rq=$(jq -r .id <<<"$BODY")
  call -X POST -H "$(auth "$LIZ")" "$URL/v1/requests/$rq/approve"
  assert_eq 200 "$ST" "approve $i"
  if [ $((i % 2)) = 0 ]; then t_kill_server; t_start_server; fi
done
for i in 0 1 2 3 4 5; do
  for k in $(seq 1 100); do [ ! -e "$(obj "${shas[$i]}")" ] && break; sleep 0.1; done
  [ ! -e "$(obj "${shas[$i]}")" ] || fail "the bytes of item $i survived"
  call -H "$(auth "$LOU")" "$URL/v1/evidence/${ids[$i]}"
  assert_eq deleted "$(jq -r .state <<<"$BODY")" "item $i is a tombstone"
done
for i in 0 1 2 3 4 5; do
  for k in $(seq 1 50); do
    n=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/evidence/${ids[$i]}/events" | jq '[.events[].event | select(.type == "purged")] | length')
    [ "$n" -ge 1 ] && break
    sleep 0.1
  done
  assert_eq 1 "$n" "item $i purged once"
done
t_stop_server
t_verify
assert_eq 0 "$VRC" "verify: $(cat "$T/v.txt")"
echo ok
