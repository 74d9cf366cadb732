#!/usr/bin/env bash
# t3005: a recorder token for device cam-a pushing with --device cam-b
# fails with exit status 1 and the server's explanation on stderr, uploads
# nothing and leaves no upload to resume; the same file with --device cam-a
# (or no --device) goes through. A bad token is refused the same way.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device cam-a)
ST="$T/state"
F="$T/clip.bin"
t_noise 50000 "$F"

rc=0
out=$("$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --device cam-b "$F" 2>"$T/err") || rc=$?
assert_eq 1 "$rc" "exit status for another device"
assert_eq "" "$out" "nothing printed on stdout"
assert_match "custos push: $F: .*403.*this token uploads for device 'cam-a' only, not 'cam-b'" \
  "$(cat "$T/err")" "the server's reason reaches the user"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "a refusal is not retried: $(cat "$T/err")"
list=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence")
assert_eq 0 "$(jq '.items | length' <<<"$list")" "evidence after a refused push"
assert_eq 0 "$(find "$ST" -name '*.json' | wc -l)" "state files after a refused push"

rc=0
"$CUSTOS" push --server "$URL" --token "not-a-token" --state-dir "$ST" "$F" >/dev/null 2>"$T/err" || rc=$?
assert_eq 1 "$rc" "exit status for an unknown token"
assert_match "401" "$(cat "$T/err")" "an unknown token is reported as such"

out=$("$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --device cam-a "$F")
assert_match "^[0-9a-f-]{36} $(sha256sum "$F" | cut -d' ' -f1) $F\$" "$out" "own device accepted"
out=$("$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" "$F")
id=$(cut -d' ' -f1 <<<"$out")
assert_eq cam-a "$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .device_id)" \
  "no --device: the token's device"
t_stop_server
