#!/usr/bin/env bash
# t3006: the connection drops after the server committed the last PATCH but
# before its answer reached the client (a proxy swallows it, and strips the
# Custos-* headers from HEAD answers). The client HEADs, sees offset ==
# length, asks GET /v1/uploads/{id} for the evidence id and SHA-256, prints
# them and exits 0, without creating a second upload.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device cam-1)
F="$T/last.bin"
t_noise 2000000 "$F"
want=$(sha256sum "$F" | cut -d' ' -f1)

t_fault_proxy lose-last-patch-answer

rc=0
out=$("$CUSTOS" push --server "$PROXY" --token "$TOK" --state-dir "$T/state" "$F" 2>"$T/err") || rc=$?
assert_eq 0 "$rc" "exit status ($(cat "$T/err"))"
grep -q 'dropped the answer' "$T/proxy.log" || fail "the proxy never dropped an answer: $(cat "$T/proxy.log")"
grep -q '^HEAD /v1/uploads/.* -> 200' "$T/proxy.log" || fail "no HEAD after the lost answer"
grep -q '^GET /v1/uploads/.* -> 200' "$T/proxy.log" || fail "no GET of the upload's state"
read -r id got path <<<"$out"
assert_eq "$want" "$got" "printed sha256"
list=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence")
assert_eq 1 "$(jq '.items | length' <<<"$list")" "evidence records"
assert_eq "$id" "$(jq -r '.items[0].id' <<<"$list")" "printed evidence id"
assert_eq "$want" "$(jq -r '.items[0].sha256' <<<"$list")" "server's sha256"
assert_eq 1 "$(grep -c '^POST /v1/uploads -> 201' "$T/proxy.log")" "uploads created"
assert_eq 0 "$(find "$T/state/uploads" -name '*.json' | wc -l)" "remembered uploads after success"
t_stop_server
