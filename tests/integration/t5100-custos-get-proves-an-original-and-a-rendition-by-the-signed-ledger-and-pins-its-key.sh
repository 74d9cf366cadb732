#!/usr/bin/env bash
# t5100: custos get proves what it saves. Right after an upload (get waits
# for a signed head that covers it) the original is saved and stderr says
# "proved by ledger entry I in the signed tree of size S", where I is the
# item's "ingested" event and S a signed head that covers it. The first use
# pins the server's ledger key (its vkey, GET /v1/ledger/key) in
# $XDG_CONFIG_HOME/custos/ledger-keys ("<server-url> <vkey>", file 0600 in a
# 0700 directory) and says so; a second get uses the pin silently and leaves
# the file as it was. Without XDG_CONFIG_HOME the pins live in
# ~/.config/custos. --ledger-key FILE saves the key to FILE (0600) on first
# use and trusts it after. A rendition (the access copy and the poster of a
# real recording) is proved by its own "rendition" event.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
export HOME="$T/home" XDG_CONFIG_HOME="$T/config"
PINS="$XDG_CONFIG_HOME/custos/ledger-keys"

t_start_server
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN"
REC=$(t_token recorder --device cam-5100)
VKEY=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/key" | jq -r .vkey)
assert_match '^custos/[0-9a-f]{16}\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$' "$VKEY" "the server's vkey"

# ingested_index ID: the ledger index of ID's "ingested" event.
ingested_index() {
  curl -sS -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1/events" |
    jq -r '[.events[] | select(.event.type == "ingested")] | .[0].index'
}
# proved_line ERRFILE: the "proved by" line's index and size, "I S".
proved() {
  sed -n 's/^custos get: proved by ledger entry \([0-9]*\) in the signed tree of size \([0-9]*\)$/\1 \2/p' "$1"
}

# ---- an original, first use: proved, and the key pinned ----------------------
t_noise 7000 "$T/a.bin"
SHA=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
ID=$(t_put "$REC" "$T/a.bin" cam-5100)
rc=0
"$CUSTOS" get "$ID" -o "$T/out1" >"$T/o" 2>"$T/e" || rc=$?
assert_eq 0 "$rc" "custos get exit status ($(cat "$T/e"))"
cmp -s "$T/a.bin" "$T/out1" || fail "custos get saved other bytes"
assert_eq "$ID $SHA $T/out1" "$(cat "$T/o")" "custos get prints id, hash, path"
IDX=$(ingested_index "$ID")
read -r pi ps <<<"$(proved "$T/e")"
assert_eq "$IDX" "$pi" "the ledger entry custos get names is the ingested event ($(cat "$T/e"))"
[ "$ps" -gt "$IDX" ] || fail "the signed tree of size $ps does not cover entry $IDX"
call -H "$(auth "$ADMIN")" "$URL/v1/ledger/sth?size=$ps"
assert_eq 200 "$ST" "a signed head of the size custos get names"
grep -qF "pinned the ledger key $VKEY of $URL in $PINS" "$T/e" || fail "the first get does not say it pinned the key: $(cat "$T/e")"
assert_eq "$URL $VKEY" "$(grep -v '^#' "$PINS")" "the pin file holds one line: the server and its key"
assert_eq 600 "$(stat -c %a "$PINS")" "the pin file's mode"
assert_eq 700 "$(stat -c %a "$XDG_CONFIG_HOME/custos")" "the pin directory's mode"
ls "$T" | grep -q custos-part && fail "custos get left its temporary file"

# ---- a second get: the pin is used, silently ---------------------------------
cp "$PINS" "$T/pins.before"
rc=0
"$CUSTOS" get "$ID" -o "$T/out2" >"$T/o" 2>"$T/e" || rc=$?
assert_eq 0 "$rc" "the second custos get ($(cat "$T/e"))"
cmp -s "$T/a.bin" "$T/out2" || fail "the second custos get saved other bytes"
grep -q pinned "$T/e" && fail "the second get pinned again: $(cat "$T/e")"
assert_eq "$IDX" "$(proved "$T/e" | cut -d' ' -f1)" "the second get's proof ($(cat "$T/e"))"
assert_eq 1 "$(wc -l <"$T/e")" "the second get prints one line on stderr ($(cat "$T/e"))"
cmp -s "$T/pins.before" "$PINS" || fail "the second get changed the pin file"

# ---- without XDG_CONFIG_HOME: ~/.config/custos/ledger-keys -------------------
rc=0
env -u XDG_CONFIG_HOME "$CUSTOS" get "$ID" -o "$T/out3" >/dev/null 2>"$T/e" || rc=$?
assert_eq 0 "$rc" "custos get without XDG_CONFIG_HOME ($(cat "$T/e"))"
grep -qF "in $HOME/.config/custos/ledger-keys" "$T/e" || fail "no pin in ~/.config: $(cat "$T/e")"
assert_eq "$URL $VKEY" "$(grep -v '^#' "$HOME/.config/custos/ledger-keys")" "the pin under HOME"

# ---- --ledger-key FILE: saved on first use, trusted after --------------------
rc=0
"$CUSTOS" get "$ID" -o "$T/out4" --ledger-key "$T/ledger.vkey" >/dev/null 2>"$T/e" || rc=$?
assert_eq 0 "$rc" "custos get --ledger-key (new file) ($(cat "$T/e"))"
grep -qF "pinned the ledger key $VKEY in $T/ledger.vkey" "$T/e" || fail "--ledger-key does not say it saved the key: $(cat "$T/e")"
assert_eq "$VKEY" "$(cat "$T/ledger.vkey")" "the key file holds the vkey"
assert_eq 600 "$(stat -c %a "$T/ledger.vkey")" "the key file's mode"
rc=0
"$CUSTOS" get "$ID" -o "$T/out5" --ledger-key "$T/ledger.vkey" >/dev/null 2>"$T/e" || rc=$?
assert_eq 0 "$rc" "custos get --ledger-key (existing file) ($(cat "$T/e"))"
grep -q pinned "$T/e" && fail "--ledger-key with an existing file pinned again: $(cat "$T/e")"
cmp -s "$T/a.bin" "$T/out5" || fail "custos get --ledger-key saved other bytes"

# ---- renditions: proved by their own events ----------------------------------
t_make_mp4 "$T/rec.mp4" 1
MP4=$(t_push "$T/rec.mp4" cam-5100)
t_rend_settle "$MP4"
RECORD=$BODY
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$MP4/events"
EVENTS=$BODY
for k in access poster; do
  assert_eq done "$(jq -r ".renditions.$k.state" <<<"$RECORD")" "state of the $k rendition"
  want=$(jq -r ".renditions.$k.sha256" <<<"$RECORD")
  idx=$(jq -r --arg k "$k" '[.events[] | select(.event.type == "rendition" and .event.kind == $k)] | .[0].index' <<<"$EVENTS")
  rc=0
  line=$("$CUSTOS" get "$MP4" --rendition "$k" -o "$T/got.$k" 2>"$T/e") || rc=$?
  assert_eq 0 "$rc" "custos get --rendition $k ($(cat "$T/e"))"
  assert_eq "$MP4 $want $T/got.$k" "$line" "custos get --rendition $k prints id, hash, path"
  assert_eq "$idx" "$(proved "$T/e" | cut -d' ' -f1)" "the $k copy is proved by its rendition event ($(cat "$T/e"))"
done

t_stop_server
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
