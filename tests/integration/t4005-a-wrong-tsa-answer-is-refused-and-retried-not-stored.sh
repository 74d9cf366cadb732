#!/usr/bin/env bash
# t4005: a TSA whose certificate does not chain to the --tsa-ca given is not
# trusted: its well-formed, granted replies are refused (the log says the
# token does not verify, and why), nothing is stored (the time-stamp stays
# 404, the chain of custody shows no "timestamped" event) and the stamp job
# is retried, not dropped. Restarted with the right CA, the server gets a
# token that verifies against it, and exactly one "timestamped" event.
. "$(dirname "$0")/lib.sh"

t_tsa_pki "$T/tsa" "Test TSA"
t_tsa_pki "$T/wrong" "Unrelated TSA" # only its CA is used
t_tsa_start "$T/tsa" 0
t_start_server --tsa-url "$TSA_URL" --tsa-ca "$T/wrong/ca.pem" --tsa-timeout 2 --stamp-retry-max 2

t_noise 40000 "$T/a.bin"
SHA=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
ID=$(t_put "$ADMIN" "$T/a.bin" cam-45)

# Wait for the evidence's stamp to have been refused twice (so: retried).
for _ in $(seq 1 100); do
  grep -q "(stamp) attempt 2 failed" "$SERVER_LOG" && break
  st=$(curl -sS -o /dev/null -w '%{http_code}' -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/timestamp")
  [ "$st" = 404 ] || fail "the time-stamp from a TSA that does not chain to --tsa-ca answers $st, not 404"
  sleep 0.1
done
grep -q '"POST /tsa HTTP/1.1" 200' "$T/tsa/tsa.log" || fail "the TSA was never asked: $(cat "$T/tsa/tsa.log")"
why=$(grep -m1 "(stamp) attempt 2 failed" "$SERVER_LOG") || fail "the evidence's stamp was not tried twice within 10 s"
echo "server log: $why"
assert_match "the token from the TSA at $TSA_URL does not verify: .*(certificate|issuer|verify error)" "$why" \
  "the log says that, and why, the token does not verify"
assert_match 'failed, retrying in' "$why" "the refused stamp is retried"

call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/timestamp"
assert_eq 404 "$ST" "time-stamp from an untrusted TSA"
assert_eq not_found "$(jq -r .error <<<"$BODY")" "error of the time-stamp from an untrusted TSA"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events"
no_probed  # the probe job runs beside the stamp job: its event's place varies
assert_eq ingested "$(jq -r '[.events[].event.type] | join(" ")' <<<"$BODY")" "events with an untrusted TSA"
retried=$(metric 'custos_jobs_total{kind="stamp",outcome="retried"}')
[ "${retried:-0}" -gt 0 ] || fail "no retry counted (retried=$retried)"
assert_eq 0 "$(metric 'custos_jobs_total{kind="stamp",outcome="failed"}')" "failed jobs"
# No head's token was stored either.
sth=$(t_sth_at_least 2)
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/timestamp?size=$(jq .size <<<"$sth")"
assert_eq 404 "$ST" "a head's time-stamp from an untrusted TSA"

# The right CA: the queued stamp goes through.
t_stop_server
t_start_server --tsa-url "$TSA_URL" --tsa-ca "$T/tsa/ca.pem" --tsa-timeout 2 --stamp-retry-max 2
t_wait_200 "$URL/v1/evidence/$ID/timestamp" "$T/a.tsr" 20
out=$(openssl ts -verify -digest "$SHA" -in "$T/a.tsr" -CAfile "$T/tsa/ca.pem" 2>&1) || true
assert_match 'Verification: OK' "$out" "the token verifies against the right CA"
openssl ts -verify -digest "$SHA" -in "$T/a.tsr" -CAfile "$T/wrong/ca.pem" >/dev/null 2>&1 &&
  fail "the stored token verifies against the wrong CA"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events"
no_probed  # the probe job runs beside the stamp job: its event's place varies
assert_eq "ingested timestamped" "$(jq -r '[.events[].event.type] | join(" ")' <<<"$BODY")" "events with the right CA"
assert_eq "$TSA_URL" "$(jq -r '.events[1].event.tsa' <<<"$BODY")" "the TSA named in the event"
# The CA served is the one the server runs with now.
curl -sS -H "$(auth "$ADMIN")" "$URL/v1/tsa/root.pem" >"$T/root.pem"
cmp -s "$T/root.pem" "$T/tsa/ca.pem" || fail "/v1/tsa/root.pem is not the CA the server was restarted with"

t_stop_server
