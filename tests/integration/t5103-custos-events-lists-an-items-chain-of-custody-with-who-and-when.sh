#!/usr/bin/env bash
# t5103: custos events ID lists an item's chain of custody, one line per
# ledger event in ledger order: "#index  at  type  who  details". A real
# recording uploaded by a recorder token of user ofc-ana shows its ingested
# event by "ofc-ana (recorder)" with the short hash, file and device, and
# each finished rendition by "server" with its kind and short hash, as do
# its probe and time-stamp. --json prints the server's answer: valid JSON,
# the same number of events, each event its exact bytes parsed. A filename
# holding a terminal escape is shown quoted, never as the raw byte. An
# unknown id is a failure (exit 1), a missing one a usage error (exit 2).
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
t_start_server
export CUSTOS_SERVER="$URL"
REC=$(t_token recorder --device cam-5103 --user ofc-ana)
LEGAL=$(t_token legal --user lee)
[ -n "$REC" ] && [ -n "$LEGAL" ] || fail "could not create the tokens"

t_make_mp4 "$T/rec.mp4" 1
SHA=$(sha256sum "$T/rec.mp4" | cut -d' ' -f1)
ID=$(t_put "$REC" "$T/rec.mp4" cam-5103)
t_rend_settle "$ID"
RECORD=$BODY
t_wait_200 "$URL/v1/evidence/$ID/timestamp" "$T/tok.tsr"
# The probe runs beside the other jobs: wait for its event too.
for _ in $(seq 1 100); do
  [ "$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events" |
    jq '[.events[] | select(.event.type == "probed")] | length')" = 1 ] && break
  sleep 0.1
done

rc=0
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" events "$ID" >"$T/list" 2>"$T/e" || rc=$?
assert_eq 0 "$rc" "custos events exit status ($(cat "$T/e"))"
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" events --json "$ID" >"$T/json" 2>"$T/e" || fail "custos events --json: $(cat "$T/e")"
jq -e . "$T/json" >/dev/null || fail "custos events --json is not JSON: $(head -c 300 "$T/json")"
assert_eq "$ID" "$(jq -r .evidence "$T/json")" "the evidence --json names"
N=$(jq '.events | length' "$T/json")
[ "$N" -ge 7 ] || fail "only $N events (ingested, probed, timestamped and four renditions expected): $(cat "$T/list")"
assert_eq "$N" "$(wc -l <"$T/list")" "one line per event"

# Each event's data is its exact bytes: parsed, the event shown.
for i in $(seq 0 $((N - 1))); do
  assert_eq "$(jq -r ".events[$i].data" "$T/json" | base64 -d | jq -cS .)" "$(jq -cS ".events[$i].event" "$T/json")" \
    "event $i of --json is its data parsed"
done
# The lines are the events, in order: index, time, type.
assert_eq "$(jq -r '.events[] | "#\(.index) \(.event.at) \(.event.type)"' "$T/json")" \
  "$(awk '{ print $1, $2, $3 }' "$T/list")" "each line's index, time and type"

line() { grep -E "^#[0-9]+ +[^ ]+ +$1 " "$T/list" || fail "no $1 line: $(cat "$T/list")"; }
ing=$(line ingested)
assert_match " ofc-ana \(recorder\) +sha256 ${SHA:0:12}… size $(stat -c %s "$T/rec.mp4") file rec\.mp4 device cam-5103$" \
  "$ing" "the ingested line: who, hash, size, file, device"
assert_match ' server +status ok container ' "$(line probed)" "the probed line"
assert_match ' server +tsa built-in gen_time ' "$(line timestamped)" "the timestamped line"
for k in master access framehash poster; do
  [ "$(jq -r ".renditions.$k.state" <<<"$RECORD")" = done ] || continue
  want=$(jq -r ".renditions.$k.sha256" <<<"$RECORD")
  grep -qE "^#[0-9]+ +[^ ]+ +rendition +server +kind $k sha256 ${want:0:12}… size [0-9]+$" "$T/list" ||
    fail "no rendition line for $k with its hash: $(cat "$T/list")"
done

# ---- a filename with a terminal escape in it ---------------------------------
ESC=$(printf '\033')
echo "some notes" >"$T/x${ESC}[31mred.txt"
BAD=$(t_put "$REC" "$T/x${ESC}[31mred.txt" cam-5103)
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" events "$BAD" >"$T/bad" 2>"$T/e" || fail "custos events of the odd filename: $(cat "$T/e")"
grep -q "$ESC" "$T/bad" && fail "custos events printed a raw escape byte"
grep -qiF 'file "x\u001b[31mred.txt"' "$T/bad" || fail "the odd filename is not shown quoted: $(cat -v "$T/bad")"

# ---- errors --------------------------------------------------------------------
rc=0
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" events 01a00000-0000-7000-8000-000000000000 >"$T/o" 2>"$T/e" || rc=$?
assert_eq 1 "$rc" "custos events of an unknown id ($(cat "$T/e"))"
assert_match '404' "$(cat "$T/e")" "custos events says the item is not there"
[ -s "$T/o" ] && fail "custos events of an unknown id printed: $(cat "$T/o")"
rc=0
CUSTOS_TOKEN="$LEGAL" "$CUSTOS" events >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "custos events without an id"

t_stop_server
