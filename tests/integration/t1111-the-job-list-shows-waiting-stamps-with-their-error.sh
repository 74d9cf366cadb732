#!/usr/bin/env bash
# t1111: GET /v1/jobs and `custos jobs` show the background jobs that are not
# done: with the TSA unreachable, each upload's stamp job waits, queued, with
# its attempts and the reason; /metrics counts jobs by kind and state. Done
# jobs (the probes) are not listed. Only admins may look; bad filters are 400.
. "$(dirname "$0")/lib.sh"

PORT_DEAD=$(t_free_port)
ca="$T/ca.pem"
t_tsa_pki "$T/pki"
cp "$T/pki/ca.pem" "$ca"
t_start_server --tsa-url "http://127.0.0.1:$PORT_DEAD/tsa" --tsa-ca "$ca" --tsa-timeout 2 --stamp-retry-max 60
REC=$(t_token recorder --device cam-11)
REV=$(t_token reviewer --user rita)

IDS=()
for i in 1 2; do
  t_noise $((5000 + i)) "$T/f$i"
  IDS+=("$(t_put "$REC" "$T/f$i" cam-11)")
done

# Both stamps fail at least once (nothing listens on the TSA's port).
for _ in $(seq 1 100); do
  call -H "$(auth "$ADMIN")" "$URL/v1/jobs?kind=stamp"
  n=$(jq '[.jobs[] | select(.attempts >= 1)] | length' <<<"$BODY")
  [ "$n" = 2 ] && break
  sleep 0.1
done
assert_eq 200 "$ST" "GET /v1/jobs?kind=stamp"
assert_eq 2 "$(jq '[.jobs[] | select(.attempts >= 1)] | length' <<<"$BODY")" "stamp jobs tried at least once"
for id in "${IDS[@]}"; do
  j=$(jq -c --arg id "$id" '.jobs[] | select(.evidence == $id)' <<<"$BODY")
  [ -n "$j" ] || fail "no stamp job listed for evidence $id: $BODY"
  assert_match '^(queued|running)$' "$(jq -r .state <<<"$j")" "state of $id's stamp job"
  assert_match 'reach|connect' "$(jq -r '.error // ""' <<<"$j")" "the stamp job of $id says why it waits"
done

# The probes are done: not listed. Nothing has failed for good.
for _ in $(seq 1 50); do
  call -H "$(auth "$ADMIN")" "$URL/v1/jobs?kind=probe"
  [ "$(jq '.jobs | length' <<<"$BODY")" = 0 ] && break
  sleep 0.1
done
assert_eq 0 "$(jq '.jobs | length' <<<"$BODY")" "probe jobs still listed once done"
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?state=failed"
assert_eq 200 "$ST" "GET /v1/jobs?state=failed"
assert_eq 0 "$(jq '.jobs | length' <<<"$BODY")" "failed jobs"

# The CLI says the same.
out=$(CUSTOS_SERVER=$URL CUSTOS_TOKEN=$ADMIN "$CUSTOS" jobs --kind stamp)
for id in "${IDS[@]}"; do
  grep -q "$id" <<<"$out" || fail "custos jobs does not list the stamp of $id: $out"
done
assert_eq 2 "$(CUSTOS_SERVER=$URL CUSTOS_TOKEN=$ADMIN "$CUSTOS" jobs --kind stamp --json | jq 'length')" \
  "custos jobs --json"

# /metrics: by kind and state.
q=$(metric 'custos_jobs{kind="stamp",state="queued"}')
r=$(metric 'custos_jobs{kind="stamp",state="running"}')
assert_eq 2 $((q + r)) "stamp jobs queued or running in /metrics"
[ "$(metric 'custos_jobs_total{kind="stamp",outcome="retried"}')" -ge 2 ] || fail "stamp retries not counted"
[ "$(metric 'custos_jobs_total{kind="probe",outcome="done"}')" -ge 2 ] || fail "probe jobs done not counted"

# Who may look, and what is a bad filter.
call -H "$(auth "$REV")" "$URL/v1/jobs"
assert_eq 403 "$ST" "a reviewer lists jobs"
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?state=sleeping"
assert_eq 400 "$ST" "state=sleeping"
assert_match 'queued, running or failed' "$(jq -r .detail <<<"$BODY")" "the 400 says which states exist"
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?kind=nonsense"
assert_eq 400 "$ST" "kind=nonsense"
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?limit=0"
assert_eq 400 "$ST" "limit=0"
t_stop_server
