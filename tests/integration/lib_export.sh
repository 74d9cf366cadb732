# Helpers for the export tests (t60xx); source after lib.sh.
#
#   x_case ID TITLE                  a case (as admin)
#   x_link CASE ID...                items into it
#   x_ready ID...                    waits until each item's renditions have settled
#                                    and its original is time-stamped
#   x_export CASE JSON [TOKEN]       POST /v1/cases/CASE/exports; sets XID (and BODY)
#   x_done ID [SECONDS]              polls /status until done (default 60 s); fails on
#                                    failed; the last status is left in $BODY
#   x_proofs BAGDIR                  checks every events.jsonl line's inclusion proof
#                                    against custody/sth.json with merkle_verify.py

x_case() {
  call -X POST -H 'Content-Type: application/json' -H "$(auth "$ADMIN")" \
    -d "$(jq -cn --arg id "$1" --arg t "$2" '{id: $id, title: $t}')" "$URL/v1/cases"
  assert_eq 201 "$ST" "create case $1: $BODY"
}

x_link() {
  local c=$1 e
  shift
  for e in "$@"; do
    call -X POST -H "$(auth "$ADMIN")" "$URL/v1/cases/$c/evidence/$e"
    [ "$ST" = 201 ] || [ "$ST" = 200 ] || fail "link $e to $c: $ST $BODY"
  done
}

x_ready() {
  local e
  for e in "$@"; do
    t_rend_settle "$e" 120
    t_wait_200 "$URL/v1/evidence/$e/timestamp" "$T/tsr.tmp" 30
  done
}

x_export() {
  call -X POST -H 'Content-Type: application/json' -H "$(auth "${3:-$ADMIN}")" -d "$2" "$URL/v1/cases/$1/exports"
  assert_eq 202 "$ST" "export of $1 with $2: $BODY"
  XID=$(jq -r .id <<<"$BODY")
}

x_done() {
  local i st
  for i in $(seq 1 $((${2:-60} * 5))); do
    call -H "$(auth "$ADMIN")" "$URL/v1/exports/$1/status"
    st=$(jq -r .state <<<"$BODY")
    [ "$st" = done ] && return 0
    [ "$st" = failed ] && fail "export $1 failed: $(jq -r .error <<<"$BODY")"
    sleep 0.2
  done
  fail "export $1 not done within ${2:-60} s: $BODY"
}

x_proofs() {
  local bag=$1 size root f line idx leaf n=0
  size=$(jq -r .size "$bag/custody/sth.json")
  root=$(jq -r .root "$bag/custody/sth.json")
  for f in "$bag"/custody/*/events.jsonl; do
    while IFS= read -r line; do
      idx=$(jq -r .index <<<"$line")
      [ "$idx" -lt "$size" ] || fail "$f: event $idx is not below the head's size $size"
      leaf=$(jq -r .data <<<"$line" | MV leaves)
      # shellcheck disable=SC2046
      MV inclusion "$idx" "$size" "$leaf" "$root" $(jq -r '.audit_path[]' <<<"$line") >/dev/null ||
        fail "$f: the inclusion proof of event $idx does not lead to the signed root"
      n=$((n + 1))
    done <"$f"
  done
  [ "$n" -gt 0 ] || fail "no events in $bag"
  echo "$n"
}
