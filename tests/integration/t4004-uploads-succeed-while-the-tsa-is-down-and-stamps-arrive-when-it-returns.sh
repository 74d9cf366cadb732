#!/usr/bin/env bash
# t4004: a TSA that is down does not stop evidence coming in: with the
# external TSA's port closed, three uploads succeed and are ingested (their
# chain of custody shows "ingested" only), their time-stamps answer 404 with a
# JSON error, the server log says the TSA cannot be reached and the stamp
# jobs are retried (custos_jobs_total{kind="stamp",outcome="retried"}), not failed. Once
# the TSA listens on that port, every evidence gets a token that verifies
# against the TSA's CA, within 30 s, and a "timestamped" event.
. "$(dirname "$0")/lib.sh"

t_tsa_pki "$T/tsa"
TPORT=$(t_free_port)
TURL="http://127.0.0.1:$TPORT/tsa"
t_start_server --tsa-url "$TURL" --tsa-ca "$T/tsa/ca.pem" --tsa-timeout 2 --stamp-retry-max 2

IDS=()
declare -A SHA
for i in 1 2 3; do
  t_noise $((3000 * i)) "$T/f$i"
  id=$(t_put "$ADMIN" "$T/f$i" cam-44)
  IDS+=("$id")
  SHA[$id]=$(sha256sum "$T/f$i" | cut -d' ' -f1)
done

# Long enough for a few attempts (1 s, then 2 s apart).
sleep 3.5
for id in "${IDS[@]}"; do
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id"
  assert_eq 200 "$ST" "evidence $id while the TSA is down"
  assert_eq "${SHA[$id]}" "$(jq -r .sha256 <<<"$BODY")" "sha256 of $id"
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id/events"
  no_probed  # the probe job runs beside the stamp job: its event's place varies
  assert_eq 200 "$ST" "events of $id while the TSA is down"
  assert_eq ingested "$(jq -r '[.events[].event.type] | join(" ")' <<<"$BODY")" "events of $id while the TSA is down"
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id/timestamp"
  assert_eq 404 "$ST" "time-stamp of $id while the TSA is down"
  assert_match '^application/json' "$(hdr Content-Type)" "Content-Type of the 404"
  assert_eq not_found "$(jq -r .error <<<"$BODY")" "error of the 404"
  [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "no detail in the 404: $BODY"
done
retried=$(metric 'custos_jobs_total{kind="stamp",outcome="retried"}')
[ "${retried:-0}" -gt 0 ] || fail "no job retries counted while the TSA is down (retried=$retried)"
assert_eq 0 "$(metric 'custos_jobs_total{kind="stamp",outcome="failed"}')" "stamp jobs given up while the TSA is down"
grep -q "cannot reach the TSA at $TURL" "$SERVER_LOG" || fail "the log does not say the TSA cannot be reached"

# The TSA comes up on its port.
t_tsa_start "$T/tsa" "$TPORT"
for id in "${IDS[@]}"; do
  t_wait_200 "$URL/v1/evidence/$id/timestamp" "$T/$id.tsr" 30
  out=$(openssl ts -verify -digest "${SHA[$id]}" -in "$T/$id.tsr" -CAfile "$T/tsa/ca.pem" 2>&1) || true
  assert_match 'Verification: OK' "$out" "the token of $id verifies against the TSA's CA"
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id/events"
  no_probed  # the probe job runs beside the stamp job: its event's place varies
  assert_eq "ingested timestamped" "$(jq -r '[.events[].event.type] | join(" ")' <<<"$BODY")" "events of $id after the TSA returned"
  assert_eq "$TURL" "$(jq -r '.events[1].event.tsa' <<<"$BODY")" "the TSA named in $id's timestamped event"
done
retried=$(metric 'custos_jobs_total{kind="stamp",outcome="retried"}')
[ "${retried:-0}" -gt 0 ] || fail "custos_jobs_total{kind=\"stamp\",outcome=\"retried\"} is $retried"
assert_eq 0 "$(metric 'custos_jobs_total{kind="stamp",outcome="failed"}')" "failed jobs"
echo "stamp attempts retried: $retried"

t_stop_server
