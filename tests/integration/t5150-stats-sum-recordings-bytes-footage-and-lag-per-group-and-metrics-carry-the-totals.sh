#!/usr/bin/env bash
# t5150: GET /v1/stats and `custos stats` sum the pushed recordings per
# device and per UTC day: recordings, bytes equal to the files' sizes, hours
# of footage once probed (a raw H.264 stream's counted from its packets, as
# it has no container to state it), the ingest lag from recorded_at to arrival; bad
# parameters are 400, reviewers 403; /metrics carries the totals, and they
# survive a restart.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
probed() {
  for _ in $(seq 1 300); do
    call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1"
    assert_eq 200 "$ST" "GET evidence $1"
    [ "$(jq -r '.media.status' <<<"$BODY")" != pending ] && return 0
    sleep 0.1
  done
  fail "evidence $1 is still pending after 30 s"
}
# near WANT GOT TOLERANCE MESSAGE: |GOT - WANT| <= TOLERANCE.
near() {
  jq -en --argjson w "$1" --argjson g "$2" --argjson t "$3" '($g - $w) | fabs <= $t' >/dev/null ||
    fail "$4: expected $1 (± $3), got $2"
}

t_make_mp4 "$T/a.mp4" 2
t_make_mp4 "$T/b.mp4" 3
# As CCTV recorders export: no container, no times, B-frames.
ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=25:duration=1 -c:v libx264 -bf 2 -f h264 "$T/c.h264"
sa=$(stat -c %s "$T/a.mp4") sb=$(stat -c %s "$T/b.mp4") sc=$(stat -c %s "$T/c.h264")

now=$(date -u +%s)
ra=$(date -u -d "@$((now - 3 * 3600))" +%Y-%m-%dT%H:%M:%SZ) # 3 hours before arrival
rb=$(date -u -d "@$((now - 3600))" +%Y-%m-%dT%H:%M:%SZ)     # 1 hour before
rc="2026-01-02T00:15:00+01:00"                               # 2026-01-01 in UTC
t_start_server
LEGAL=$(t_token legal --user lou)
REVIEWER=$(t_token reviewer --user rita)
ea=$(t_push "$T/a.mp4" dev-a --officer off-1 --recorded-at "$ra")
eb=$(t_push "$T/b.mp4" dev-a --officer off-2 --recorded-at "$rb")
ec=$(t_push "$T/c.h264" dev-b --officer off-1 --recorded-at "$rc")
for e in "$ea" "$eb" "$ec"; do probed "$e"; done
dur() { curl -sS -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1" | jq '.media.duration_s'; }
da=$(dur "$ea") db=$(dur "$eb") dc=$(dur "$ec")
near 2 "$da" 0.2 "a.mp4's probed duration"
near 1 "$dc" 1e-9 "c.h264's counted duration (25 frames at 25 a second)"
assert_eq packets "$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ec" | jq -r .media.duration_from)" \
  "where c.h264's duration comes from"

# By device, as legal.
call -H "$(auth "$LEGAL")" "$URL/v1/stats?by=device"
assert_eq 200 "$ST" "GET /v1/stats?by=device"
assert_eq device "$(jq -r .by <<<"$BODY")" "by"
assert_eq "null null" "$(jq -r '"\(.from) \(.to)"' <<<"$BODY")" "from and to, open"
assert_eq "dev-a dev-b" "$(jq -r '[.groups[].key] | join(" ")' <<<"$BODY")" "device groups, in order"
g() { jq -r --arg k "$1" ".groups[] | select(.key == \$k) | $2" <<<"$BODY"; }
assert_eq 2 "$(g dev-a .recordings)" "dev-a recordings"
assert_eq 1 "$(g dev-b .recordings)" "dev-b recordings"
assert_eq $((sa + sb)) "$(g dev-a .bytes)" "dev-a bytes (the files' sizes)"
assert_eq "$sc" "$(g dev-b .bytes)" "dev-b bytes"
near "$(jq -n "($da + $db) / 3600")" "$(g dev-a .footage_hours)" 1e-6 "dev-a hours"
near "$(jq -n "$dc / 3600")" "$(g dev-b .footage_hours)" 1e-6 "dev-b hours"
assert_eq 0 "$(g dev-a .failed_jobs)" "dev-a failed jobs"
t() { jq -r ".totals | $1" <<<"$BODY"; }
assert_eq 3 "$(t .recordings)" "total recordings"
assert_eq $((sa + sb + sc)) "$(t .bytes)" "total bytes"
assert_eq 0 "$(t .failed_jobs)" "total failed jobs"
assert_eq 3 "$(t .ingest_lag_seconds.count)" "lags measured"
# dev-a's lags are 3 h and 1 h plus the seconds the pushes took.
assert_eq true "$(g dev-a '.ingest_lag_seconds.max >= 10800 and .ingest_lag_seconds.max < 10800 + 120')" \
  "dev-a's largest lag ($(g dev-a .ingest_lag_seconds.max))"
assert_eq true "$(g dev-a '.ingest_lag_seconds.mean >= 7200 and .ingest_lag_seconds.mean < 7200 + 120')" \
  "dev-a's mean lag ($(g dev-a .ingest_lag_seconds.mean))"
assert_eq true "$(g dev-a '.ingest_lag_seconds.p50 >= 3600 * 0.93 and .ingest_lag_seconds.p50 <= (3600 + 120) * 1.07')" \
  "dev-a's median lag, within the histogram's precision ($(g dev-a .ingest_lag_seconds.p50))"
hours=$(t .footage_hours)

# A time range: only b is in the last two hours.
from=$(date -u -d "@$((now - 2 * 3600))" +%Y-%m-%dT%H:%M:%SZ)
call -H "$(auth "$ADMIN")" "$URL/v1/stats?by=device&from=$from"
assert_eq 200 "$ST" "GET /v1/stats?from="
assert_eq "dev-a:1:$sb" "$(jq -r '.groups | map("\(.key):\(.recordings):\(.bytes)") | join(" ")' <<<"$BODY")" \
  "groups from $from"

# By UTC day, through the CLI.
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$LEGAL"
"$CUSTOS" stats --by day --json >"$T/day.json" || fail "custos stats --by day --json failed"
want=$(printf '%s\n' 2026-01-01 "${ra:0:10}" "${rb:0:10}" | sort -u | tr '\n' ' ' | sed 's/ $//')
assert_eq "$want" "$(jq -r '[.groups[].key] | join(" ")' "$T/day.json")" "day groups"
assert_eq "1:$sc" "$(jq -r '.groups[] | select(.key == "2026-01-01") | "\(.recordings):\(.bytes)"' "$T/day.json")" \
  "c.h264, recorded 2026-01-02T00:15+01:00, is on 2026-01-01 UTC"
assert_eq 3 "$(jq '[.groups[].recordings] | add' "$T/day.json")" "recordings over the days"
"$CUSTOS" stats --by device >"$T/table.txt" || fail "custos stats --by device failed"
assert_match 'DEVICE +RECORDINGS +HOURS +SIZE +LAG P50 +LAG P95 +LAG MAX +FAILED' "$(head -n 1 "$T/table.txt")" \
  "the table's header"
assert_match '^TOTAL +3 ' "$(tail -n 1 "$T/table.txt")" "the table's totals line"
assert_match '^dev-b +1 ' "$(grep '^dev-b' "$T/table.txt")" "dev-b's row"
rc2=0
"$CUSTOS" stats --by week 2>"$T/err.txt" || rc2=$?
assert_eq 2 "$rc2" "custos stats --by week is a usage error"

# Bad parameters: 400 with a JSON error; reviewers: 403.
call -H "$(auth "$LEGAL")" "$URL/v1/stats?from=yesterday"
assert_eq 400 "$ST" "a bad from"
assert_eq invalid "$(jq -r .error <<<"$BODY")" "error of a bad from"
assert_match 'RFC 3339' "$(jq -r .detail <<<"$BODY")" "detail of a bad from"
call -H "$(auth "$LEGAL")" "$URL/v1/stats?to=2026-13-01T00:00:00Z"
assert_eq 400 "$ST" "a bad to"
call -H "$(auth "$LEGAL")" "$URL/v1/stats?by=week"
assert_eq 400 "$ST" "an unknown grouping"
call -H "$(auth "$LEGAL")" "$URL/v1/stats?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"
assert_eq 400 "$ST" "from after to"
call -H "$(auth "$REVIEWER")" "$URL/v1/stats"
assert_eq 403 "$ST" "a reviewer"
call "$URL/v1/stats"
assert_eq 401 "$ST" "no token"

# /metrics carries the totals, and they survive a restart.
check_metrics() {
  assert_eq 3 "$(metric custos_evidence)" "custos_evidence ($1)"
  assert_eq $((sa + sb + sc)) "$(metric custos_evidence_bytes)" "custos_evidence_bytes ($1)"
  near "$(jq -n "$hours * 3600")" "$(metric custos_evidence_footage_seconds)" 1e-5 \
    "custos_evidence_footage_seconds ($1)"
}
check_metrics "running"
t_stop_server
t_start_server
check_metrics "after a restart"
t_stop_server
