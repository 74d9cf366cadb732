#!/usr/bin/env bash
# t1110: custos token/ls/show/get work as a user would use them, and
# custos get refuses (exit 3, nothing left behind) bytes whose SHA-256 is not
# the evidence record's.
. "$(dirname "$0")/lib.sh"

t_start_server
export CUSTOS_SERVER="$URL"
REC=$(CUSTOS_TOKEN="$ADMIN" "$CUSTOS" token create --role recorder --device cam-7)
assert_match '^cus_[A-Za-z0-9_-]{43}$' "$REC" "token create prints only the secret"
LEGAL=$(CUSTOS_TOKEN="$ADMIN" "$CUSTOS" token create --role legal --user lee)
out=$(CUSTOS_TOKEN="$REC" "$CUSTOS" token create --role admin 2>&1) && fail "a recorder created a token"
assert_match 'answered 403' "$out" "token create by a recorder"
out=$(CUSTOS_TOKEN="$ADMIN" "$CUSTOS" token create --role recorder 2>&1) && fail "recorder token without a device"
assert_match 'device' "$out" "the reason names the missing device"

t_make_mp4 "$T/a.mp4" 1
t_noise 5000 "$T/b.bin"
ids=()
for f in a.mp4 b.bin; do
  line=$(CUSTOS_TOKEN="$REC" "$CUSTOS" push --state-dir "$T/state" --officer off-1 "$T/$f")
  ids+=("${line%% *}")
done

# ls: a table by default, JSON with --json; filters reach the server.
table=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" ls --device cam-7)
assert_match '^ID +RECORDED_AT +DEVICE' "$table" "ls prints a header"
assert_eq 3 "$(wc -l <<<"$table")" "ls lists two recordings"
assert_match "${ids[0]}.*cam-7 +off-1 .*a\.mp4" "$table" "ls row for the mp4"
json=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" ls --json --order desc)
assert_eq "${ids[1]}" "$(jq -r '.[0].id' <<<"$json")" "ls --order desc puts the newest first"
assert_eq 0 "$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" ls --json --device cam-8 | jq length)" "ls for another device"
assert_eq 1 "$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" ls --json --limit 1 | jq length)" "ls --limit"
out=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" ls --from yesterday 2>&1) && fail "ls accepted a bad time"
assert_match 'RFC 3339' "$out" "ls explains the time format"

# show: the probe's findings appear once the probe ran.
for _ in $(seq 1 100); do
  st=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" show --json "${ids[0]}" | jq -r .media.status)
  [ "$st" != pending ] && break
  sleep 0.1
done
assert_eq ok "$st" "the mp4 was probed"
shown=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" show "${ids[0]}")
assert_match "sha256 +$(sha256sum "$T/a.mp4" | cut -d' ' -f1)" "$shown" "show prints the hash"
assert_match 'video h264 160x120' "$shown" "show prints the video stream"
out=$(CUSTOS_TOKEN="$REC" "$CUSTOS" show "${ids[0]}" 2>&1) && fail "a recorder read evidence"
assert_match '403' "$out" "show by a recorder is refused"

# get: the right bytes, checked; wrong ones refused and removed.
line=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" get "${ids[0]}" -o "$T/out.mp4")
cmp "$T/a.mp4" "$T/out.mp4" || fail "get wrote other bytes"
assert_eq "${ids[0]} $(sha256sum "$T/a.mp4" | cut -d' ' -f1) $T/out.mp4" "$line" "get prints id, hash, path"
sha_b=$(sha256sum "$T/b.bin" | cut -d' ' -f1)
obj="$HOME_DIR/objects/sha256/${sha_b:0:2}/${sha_b:2:2}/$sha_b"
chmod u+w "$obj"
# Flip a bit (writing a fixed byte would change nothing 1 time in 256).
python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 0x01]))' "$obj"
rc=0
out=$(CUSTOS_TOKEN="$LEGAL" "$CUSTOS" get "${ids[1]}" -o "$T/out.bin" 2>&1) || rc=$?
assert_eq 3 "$rc" "get exit status for damaged bytes"
assert_match 'REFUSED' "$out" "get says it refused"
[ ! -e "$T/out.bin" ] || fail "get left the damaged file behind"
ls "$T" | grep -q custos-part && fail "get left its temporary file behind"
t_stop_server
