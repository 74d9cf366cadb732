#!/usr/bin/env bash
# t5101: a server whose ledger key is not the pinned one is refused. With
# --ledger-key FILE holding another server's key (a second server started
# here), and with the per-user pin file naming another key for this
# server's URL, custos get exits 3, leaves neither the output file nor its
# temporary file, and says REFUSED: the ledger key changed, naming the key
# the server presents, the pinned key, and the file to edit if the change is
# legitimate; the pin is not replaced. A key file that holds no key is a
# failure (exit 1), not a pin. Put back, the right key lets the get through.
. "$(dirname "$0")/lib.sh"

export HOME="$T/home" XDG_CONFIG_HOME="$T/config"
PINS="$XDG_CONFIG_HOME/custos/ledger-keys"

t_start_server
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN"
VKEY=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/key" | jq -r .vkey)

# A second server, with a ledger key of its own.
mkdir -p "$T/other"
"$CUSTOS" serve --home "$T/other/var" --listen 127.0.0.1:0 --port-file "$T/other/port" \
  >"$T/other/log" 2>&1 &
t_bg $!
for _ in $(seq 1 200); do [ -s "$T/other/port" ] && break; sleep 0.05; done
[ -s "$T/other/port" ] || fail "the second server did not start: $(cat "$T/other/log")"
OTHER=$(curl -sS -H "$(auth "$(cat "$T/other/var/admin.token")")" \
  "http://127.0.0.1:$(cat "$T/other/port")/v1/ledger/key" | jq -r .vkey)
assert_match '^custos/' "$OTHER" "the second server's vkey"
[ "$OTHER" != "$VKEY" ] || fail "two servers have the same ledger key"

t_noise 3000 "$T/a.bin"
ID=$(t_put "$ADMIN" "$T/a.bin" cam-5101)

# refused WHAT ARGS...: custos get ARGS... must exit 3 and leave nothing;
# its stderr is in $T/e.
refused() {
  local what=$1 rc=0
  shift
  "$CUSTOS" get "$ID" -o "$T/out" "$@" >"$T/o" 2>"$T/e" || rc=$?
  assert_eq 3 "$rc" "custos get exit status: $what ($(cat "$T/e"))"
  [ ! -e "$T/out" ] || fail "$what: custos get left the output file"
  ls "$T" | grep -q custos-part && fail "$what: custos get left its temporary file"
  [ -s "$T/o" ] && fail "$what: custos get printed a result: $(cat "$T/o")"
  grep -q '^custos get: REFUSED: the ledger key changed' "$T/e" || fail "$what: not refused for the key: $(cat "$T/e")"
  grep -qF "$VKEY" "$T/e" || fail "$what: the message does not name the server's key: $(cat "$T/e")"
  grep -qF "$OTHER" "$T/e" || fail "$what: the message does not name the pinned key: $(cat "$T/e")"
}

# ---- --ledger-key FILE with another server's key -----------------------------
echo "$OTHER" >"$T/pinned.vkey"
refused "--ledger-key with another key" --ledger-key "$T/pinned.vkey"
grep -qF "put the new key in $T/pinned.vkey" "$T/e" || fail "the message does not say which file to change: $(cat "$T/e")"
assert_eq "$OTHER" "$(cat "$T/pinned.vkey")" "the key file after a refusal"

# ---- the pin file naming another key for this server -------------------------
mkdir -p "$(dirname "$PINS")"
printf '# pins\n%s %s\n' "$URL" "$OTHER" >"$PINS"
cp "$PINS" "$T/pins.before"
refused "the pin file with another key"
grep -qF "pinned for it in $PINS" "$T/e" || fail "the message does not name the pin file: $(cat "$T/e")"
grep -qF "edit that line of $PINS" "$T/e" || fail "the message does not say how to accept a legitimate change: $(cat "$T/e")"
cmp -s "$T/pins.before" "$PINS" || fail "a refused get changed the pin file"

# ---- a key file that holds no key --------------------------------------------
echo "not a key" >"$T/bad.vkey"
rc=0
"$CUSTOS" get "$ID" -o "$T/out" --ledger-key "$T/bad.vkey" >/dev/null 2>"$T/e" || rc=$?
assert_eq 1 "$rc" "custos get with a key file holding no key ($(cat "$T/e"))"
grep -q 'does not hold a ledger verifier key' "$T/e" || fail "the message does not say the file holds no key: $(cat "$T/e")"
[ ! -e "$T/out" ] || fail "custos get with a bad key file left the output file"
assert_eq "not a key" "$(cat "$T/bad.vkey")" "the bad key file is left as it was"

# ---- the right key, put back by hand, lets the get through -------------------
printf '# pins\n%s %s\n' "$URL" "$VKEY" >"$PINS"
rc=0
"$CUSTOS" get "$ID" -o "$T/out" >/dev/null 2>"$T/e" || rc=$?
assert_eq 0 "$rc" "custos get with the right pin ($(cat "$T/e"))"
cmp -s "$T/a.bin" "$T/out" || fail "custos get saved other bytes"
grep -q pinned "$T/e" && fail "custos get pinned over an existing pin: $(cat "$T/e")"

t_stop_server
