#!/usr/bin/env bash
# t3007: the file is changed in place (same size) while it is being sent,
# so the bytes the server receives do not hash to the SHA-256 the client
# declared. The server quarantines them (460); push reports the mismatch,
# exits 3 (EXIT_CORRUPT), keeps no upload to resume and no done-marker, and
# the server lists no evidence.
. "$(dirname "$0")/lib.sh"

t_start_server
TOK=$(t_token recorder --device cam-1)
ST="$T/state"
F="$T/tampered.bin"
SIZE=$((6 * 1024 * 1024))
t_noise "$SIZE" "$F"

"$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" --max-rate 1500000 "$F" \
  >"$T/out" 2>"$T/err" &
PUSH_PID=$!
t_bg "$PUSH_PID"
for _ in $(seq 1 100); do
  [ "$(metric custos_upload_bytes_received_total)" -ge 1000000 ] && break
  sleep 0.1
done
received=$(metric custos_upload_bytes_received_total)
[ "$received" -lt $((SIZE - 2 * 1024 * 1024)) ] || fail "too late to change the file ($received bytes sent)"
# The last MiB, not yet sent, becomes other bytes.
head -c $((1024 * 1024)) /dev/urandom | dd of="$F" bs=1M seek=5 conv=notrunc status=none
rc=0
wait "$PUSH_PID" || rc=$?
assert_eq 3 "$rc" "exit status when the server's hash differs"
assert_match "$F: .*460.*quarantine" "$(cat "$T/err")" "the mismatch is explained"
[ -s "$T/out" ] && fail "a mismatched file was reported as uploaded: $(cat "$T/out")"
list=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence")
assert_eq 0 "$(jq '.items | length' <<<"$list")" "evidence after a mismatch"
assert_eq 1 "$(metric custos_uploads_failed_total)" "uploads refused by the server"
assert_eq 0 "$(find "$ST" -name '*.json' | wc -l)" "state files after a mismatch"

# Pushed again as it is now, the file goes through.
out=$("$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" "$F")
assert_eq "$(sha256sum "$F" | cut -d' ' -f1)" "$(cut -d' ' -f2 <<<"$out")" "sha256 of the file as it is now"
t_stop_server
