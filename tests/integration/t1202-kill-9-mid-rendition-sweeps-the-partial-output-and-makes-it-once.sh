#!/usr/bin/env bash
# t1202: SIGKILL while a master is being made (one worker, one media thread,
# a 20 s MPEG-2 clip whose master is an FFV1 transcode). While it ran, GET
# /v1/jobs showed it running with a progress between 0 and 1, and its partial
# output was in var/work. After the kill the partial file is still there; the
# restart sweeps it before the job runs again; every rendition then finishes,
# the item's chain of custody has exactly one "rendition" event per kind, the
# work directory is empty, and custos verify passes offline.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30" \
  -f lavfi -i "sine=frequency=440" -t 20 -c:v mpeg2video -q:v 4 -c:a mp2 -shortest -f mpegts "$T/long.ts" ||
  fail "ffmpeg could not make the clip"
WORK="$HOME_DIR/work"
OPTS=(--workers 1 --media-threads 1)

t_start_server "${OPTS[@]}"
ID=$(t_push "$T/long.ts" cam-1202)

# Wait for the master job to run and to have written part of its output.
JOB=""
progress=()
for _ in $(seq 1 600); do
  call -H "$(auth "$ADMIN")" "$URL/v1/jobs?kind=master"
  assert_eq 200 "$ST" "GET /v1/jobs?kind=master"
  j=$(jq -c --arg e "$ID" '.jobs[] | select(.evidence == $e and .state == "running")' <<<"$BODY")
  if [ -n "$j" ]; then
    jq -e '.progress | type == "number" and . >= 0 and . <= 1' <<<"$j" >/dev/null ||
      fail "a running job's progress is not a number in [0, 1]: $j"
    progress+=("$(jq .progress <<<"$j")")
    JOB=$(jq -r .id <<<"$j")
    part="$WORK/$JOB.master.mkv"
    if [ -s "$part" ] && jq -e '.progress > 0' <<<"$j" >/dev/null; then break; fi
  fi
  sleep 0.05
done
[ -n "$JOB" ] || fail "the master job of $ID was never seen running"
[ -s "$part" ] || fail "no partial output of the running master in $WORK: $(ls -la "$WORK")"
echo "progress seen while the master ran: ${progress[*]}"
t_kill_server

# The partial output survived the crash; keep a second name for it.
[ -s "$part" ] || fail "the partial master is gone after kill -9: $(ls -la "$WORK")"
ln "$part" "$T/partial.keep"
ino=$(stat -c %i "$T/partial.keep")
echo "stale" >"$WORK/orphan.tmp"

# The restart sweeps the work directory before a worker starts.
t_start_server "${OPTS[@]}"
assert_eq 1 "$(stat -c %h "$T/partial.keep")" "links to the partial master after the restart (1: swept)"
[ ! -e "$WORK/orphan.tmp" ] || fail "an orphan file in $WORK survived the restart"
if [ -e "$part" ]; then
  [ "$(stat -c %i "$part")" != "$ino" ] || fail "the crashed attempt's partial master is still in $WORK"
fi
grep -q 'removed 2 partial outputs' "$SERVER_LOG" || fail "the restart does not say it removed the partial outputs"

# The master runs again and everything finishes.
t_rend_settle "$ID" 120
for k in master access framehash poster; do
  assert_eq done "$(jq -r ".renditions.$k.state" <<<"$BODY")" \
    "the $k after the restart ($(jq -c ".renditions.$k | {state, error, reason}" <<<"$BODY"))"
done
REC=$BODY
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events"
assert_eq 200 "$ST" "GET events"
for k in master access framehash poster; do
  evs=$(jq -c --arg k "$k" '[.events[].event | select(.type == "rendition" and .kind == $k)]' <<<"$BODY")
  assert_eq 1 "$(jq length <<<"$evs")" "rendition events of kind $k after the crash"
  assert_eq "$(jq -r ".renditions.$k.sha256" <<<"$REC")" "$(jq -r '.[0].sha256' <<<"$evs")" "the $k event's sha256"
done
call -H "$(auth "$ADMIN")" "$URL/v1/jobs?state=failed"
assert_eq 0 "$(jq '.jobs | length' <<<"$BODY")" "failed jobs after the crash ($BODY)"
assert_eq "" "$(ls -A "$WORK")" "the work directory once every rendition is done"

# The master made after the crash is a whole, valid file.
CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN" "$CUSTOS" get "$ID" --rendition master -o "$T/master.mkv" >/dev/null ||
  fail "custos get of the master made after the crash"
rc=0
ffmpeg -v error -i "$T/master.mkv" -f null - >"$T/dec.out" 2>&1 || rc=$?
assert_eq 0 "$rc" "ffmpeg decoding the master made after the crash"
[ ! -s "$T/dec.out" ] || fail "ffmpeg reported errors decoding the master: $(head -c 300 "$T/dec.out")"

t_stop_server
t_verify
assert_eq 0 "$VRC" "custos verify after the crash ($(cat "$T/v.txt"))"
