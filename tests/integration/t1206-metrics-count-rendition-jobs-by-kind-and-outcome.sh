#!/usr/bin/env bash
# t1206: /metrics counts the rendition jobs: one upload of a real recording
# adds one to custos_jobs_total{kind=K,outcome="done"} for each of master,
# access, framehash and poster, and leaves none queued or running; an MP4
# whose moov was never written adds one to {kind="master",outcome="failed"}
# and nothing to "retried" (a verdict is final).
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc=size=320x240:rate=25" -f lavfi -i "sine=frequency=440" \
  -t 3 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$T/a.mp4" || fail "ffmpeg could not make the clip"
n=$(stat -c %s "$T/a.mp4")
head -c $((n * 60 / 100)) "$T/a.mp4" >"$T/cut.mp4"
KINDS=(master access framehash poster)
m() { metric "custos_jobs_total{kind=\"$1\",outcome=\"$2\"}"; }

t_start_server
declare -A before
for k in "${KINDS[@]}"; do
  before[$k]=$(m "$k" done)
  assert_match '^[0-9]+$' "${before[$k]}" "custos_jobs_total{kind=\"$k\",outcome=\"done\"} before any upload"
done
ID=$(t_push "$T/a.mp4" cam-1206)
t_rend_settle "$ID"
for k in "${KINDS[@]}"; do
  assert_eq done "$(jq -r ".renditions.$k.state" <<<"$BODY")" "the $k"
done
# The counter follows the record within a moment (it is bumped after the record is written).
for _ in $(seq 1 50); do
  ok=1
  for k in "${KINDS[@]}"; do [ "$(m "$k" done)" = $((before[$k] + 1)) ] || ok=0; done
  [ "$ok" = 1 ] && break
  sleep 0.1
done
for k in "${KINDS[@]}"; do
  assert_eq $((before[$k] + 1)) "$(m "$k" done)" "custos_jobs_total{kind=\"$k\",outcome=\"done\"} after one upload"
  assert_eq 0 "$(metric "custos_jobs{kind=\"$k\",state=\"queued\"}")" "custos_jobs{kind=\"$k\",state=\"queued\"}"
  assert_eq 0 "$(metric "custos_jobs{kind=\"$k\",state=\"running\"}")" "custos_jobs{kind=\"$k\",state=\"running\"}"
done

failed0=$(m master failed)
retried0=$(m master retried)
CUT=$(t_push "$T/cut.mp4" cam-1206)
t_rend_settle "$CUT"
assert_eq failed "$(jq -r .renditions.master.state <<<"$BODY")" "the moov-less MP4's master"
for _ in $(seq 1 50); do
  [ "$(m master failed)" = $((failed0 + 1)) ] && break
  sleep 0.1
done
assert_eq $((failed0 + 1)) "$(m master failed)" 'custos_jobs_total{kind="master",outcome="failed"}'
assert_eq "$retried0" "$(m master retried)" 'custos_jobs_total{kind="master",outcome="retried"} (a verdict is not retried)'
assert_eq "$((before[master] + 1))" "$(m master done)" 'custos_jobs_total{kind="master",outcome="done"} after a failure'
t_stop_server
