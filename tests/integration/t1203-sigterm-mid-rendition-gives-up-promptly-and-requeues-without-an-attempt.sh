#!/usr/bin/env bash
# t1203: SIGTERM while a long master is being made (one worker, one media
# thread, a 40 s MPEG-2 clip whose master is an FFV1 transcode that takes
# far longer than the stop may): the job is told to give up, so the server
# exits 0 within 15 s; the master is not made, the job is not failed and is
# not charged an attempt, and its partial output is gone. After the restart
# the job runs again and every rendition finishes.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30" \
  -f lavfi -i "sine=frequency=440" -t 40 -c:v mpeg2video -q:v 4 -c:a mp2 -shortest -f mpegts "$T/long.ts" ||
  fail "ffmpeg could not make the clip"
WORK="$HOME_DIR/work"

t_start_server --workers 1 --media-threads 1
ID=$(t_push "$T/long.ts" cam-1203)

# Wait until the master runs and has output on disk.
JOB=""
for _ in $(seq 1 600); do
  call -H "$(auth "$ADMIN")" "$URL/v1/jobs?kind=master"
  j=$(jq -c --arg e "$ID" '.jobs[] | select(.evidence == $e and .state == "running")' <<<"$BODY")
  if [ -n "$j" ]; then
    JOB=$(jq -r .id <<<"$j")
    [ -s "$WORK/$JOB.master.mkv" ] && break
  fi
  sleep 0.05
done
[ -n "$JOB" ] && [ -s "$WORK/$JOB.master.mkv" ] || fail "the master job of $ID was never seen running with output"
attempts_before=$(jq -r .attempts <<<"$j")
assert_eq 0 "$attempts_before" "attempts of the running master job"
pct=$(jq -r .progress <<<"$j")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 else 1)" "$pct" ||
  fail "the master was already at $pct when the stop was sent: the clip is too short to test a stop"

# A clean stop: exit 0, promptly.
t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"
for _ in $(seq 1 150); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  fail "the server still runs 15 s after SIGTERM (a media job that does not give up?)"
fi
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
assert_eq 0 "$rc" "exit status after SIGTERM"
echo "the server stopped $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$t0" "$(date +%s.%N)") s after SIGTERM"
grep -q "job $JOB (master) stopped with the server" "$SERVER_LOG" ||
  fail "the log does not say the master job stopped with the server"
grep -q "job $JOB (master) failed" "$SERVER_LOG" && fail "the stopped master job was logged as failed"
assert_eq "" "$(ls -A "$WORK")" "the work directory after a clean stop (the partial master is deleted)"

# Restarted (all cores now): the job is queued again, not failed, no attempt charged.
t_start_server
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?kind=master"
j=$(jq -c --arg id "$JOB" '.jobs[] | select(.id == $id)' <<<"$BODY")
[ -n "$j" ] || fail "the stopped master job is not pending after the restart: $BODY"
assert_match '^(queued|running)$' "$(jq -r .state <<<"$j")" "state of the stopped master job after the restart"
assert_eq 0 "$(jq -r .attempts <<<"$j")" "attempts of the stopped master job after the restart"
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?state=failed"
assert_eq 0 "$(jq '.jobs | length' <<<"$BODY")" "failed jobs after the stop ($BODY)"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events"
assert_eq 0 "$(jq '[.events[].event | select(.type == "rendition" and .kind == "master")] | length' <<<"$BODY")" \
  "master rendition events before the master is made"

t_rend_settle "$ID" 150
for k in master access framehash poster; do
  assert_eq done "$(jq -r ".renditions.$k.state" <<<"$BODY")" \
    "the $k after the restart ($(jq -c ".renditions.$k | {state, error, reason}" <<<"$BODY"))"
done
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events"
for k in master access framehash poster; do
  assert_eq 1 "$(jq --arg k "$k" '[.events[].event | select(.type == "rendition" and .kind == $k)] | length' <<<"$BODY")" \
    "rendition events of kind $k"
done
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?state=failed"
assert_eq 0 "$(jq '.jobs | length' <<<"$BODY")" "failed jobs at the end"
t_stop_server
