#!/usr/bin/env bash
# t5102: custos get checks every link from the bytes to the pinned key, and
# refuses (exit 3, no output file, no temporary file, "REFUSED:" and what
# differs) when one breaks. Through a proxy that alters one thing in the
# server's answers (the key pinned beforehand from the server itself):
#   - one content byte flipped: the bytes' hash is not the record's;
#   - the ingested event left out of /events: no such event;
#   - the ingested event's sha256 changed in its bytes: it records another hash;
#   - the ingested event's bytes changed (its time; data, leaf_hash and event
#     all made to agree): the inclusion proof is invalid;
#   - one hash of the inclusion proof flipped: the proof is invalid;
#   - the signed head's root changed: its signature is invalid.
# The same proxy passing everything through is accepted. Then, on the
# stopped server, custos-tamper rewrites the ingested entry on disk (the
# stored tree left alone, so the server starts): custos get straight from
# the restarted server names the failing proof of that entry.
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_TAMPER:?CUSTOS_TAMPER must point at the custos-tamper binary}"

export HOME="$T/home" XDG_CONFIG_HOME="$T/config"
t_start_server --scrub-rate 0
export CUSTOS_TOKEN="$ADMIN"
curl -sS -H "$(auth "$ADMIN")" "$URL/v1/ledger/key" | jq -r .vkey >"$T/ledger.vkey"

t_noise 20000 "$T/a.bin"
ID=$(t_put "$ADMIN" "$T/a.bin" cam-5102)
SHA=$(sha256sum "$T/a.bin" | cut -d' ' -f1)
IDX=$(curl -sS -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events" |
  jq -r '[.events[] | select(.event.type == "ingested")] | .[0].index')
# Heads that cover the event, and more after it, so its proof is not empty.
t_wait_200 "$URL/v1/evidence/$ID/timestamp" "$T/tok.tsr"
t_sth_at_least $((IDX + 2)) >/dev/null

# ---- the proxy: one alteration at a time, named in $T/mode -------------------
cat >"$T/proxy.py" <<'PY'
import base64, hashlib, json, sys, urllib.parse
import fault_proxy

upstream, port_file, log_file, mode_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def flip_hex(s, i=7):
    return s[:i] + ("1" if s[i] == "0" else "0") + s[i + 1:]

def rewrite_ingested(body, change):
    doc = json.loads(body)
    kept = []
    for e in doc["events"]:
        if e["event"]["type"] == "ingested":
            data = change(base64.b64decode(e["data"]))
            if data is None:
                continue
            e["data"] = base64.b64encode(data).decode()
            e["leaf_hash"] = hashlib.sha256(b"\0" + data).hexdigest()
            e["event"] = json.loads(data)
        kept.append(e)
    doc["events"] = kept
    return json.dumps(doc).encode()

def later_time(data):
    i = data.index(b'"at":"') + 6
    j = data.index(b'Z"', i)
    d = data[j - 1:j]
    return data[:j - 1] + (b"1" if d == b"0" else b"0") + data[j:]

def other_sha(data):
    i = data.index(b'"sha256":"') + 10
    return data[:i] + flip_hex(data[i:i + 64].decode()).encode() + data[i + 64:]

def alter(mode, path, body):
    if mode == "content" and path.endswith("/content"):
        b = bytearray(body)
        b[len(b) // 2] ^= 0x01
        return bytes(b)
    if path.endswith("/events"):
        if mode == "drop-event":
            return rewrite_ingested(body, lambda d: None)
        if mode == "event-sha":
            return rewrite_ingested(body, other_sha)
        if mode == "event-bytes":
            return rewrite_ingested(body, later_time)
    if mode == "proof" and path == "/v1/ledger/proof/inclusion":
        doc = json.loads(body)
        doc["audit_path"][0] = flip_hex(doc["audit_path"][0])
        return json.dumps(doc).encode()
    if mode == "head" and path == "/v1/ledger/sth":
        doc = json.loads(body)
        lines = doc["checkpoint"].split("\n")
        root = bytearray(base64.b64decode(lines[2]))
        root[0] ^= 0x01
        lines[2] = base64.b64encode(bytes(root)).decode()
        doc["checkpoint"] = "\n".join(lines)
        doc["root"] = bytes(root).hex()
        return json.dumps(doc).encode()
    return body

class Alter(fault_proxy.Fault):
    buffers = True

    def rewrite(self, req, resp, body):
        with open(mode_file) as f:
            mode = f.read().strip()
        return alter(mode, urllib.parse.urlsplit(req.path).path, body)

fault_proxy.serve(upstream, port_file, log_file, Alter())
PY
echo none >"$T/mode"
t_fault_proxy "$T/proxy.py" "$T/mode"

# get_via MODE: custos get through the proxy in MODE; sets RC, stderr in $T/e.
get_via() {
  echo "$1" >"$T/mode"
  RC=0
  rm -f "$T/out"
  CUSTOS_SERVER="$PROXY" "$CUSTOS" get "$ID" -o "$T/out" --ledger-key "$T/ledger.vkey" >"$T/o" 2>"$T/e" || RC=$?
}
# refused MODE REGEX: through MODE, custos get exits 3, leaves nothing, and
# its REFUSED line matches REGEX.
refused() {
  get_via "$1"
  assert_eq 3 "$RC" "custos get exit status with $1 ($(cat "$T/e"))"
  [ ! -e "$T/out" ] || fail "$1: custos get left the output file"
  ls "$T" | grep -q custos-part && fail "$1: custos get left its temporary file"
  [ -s "$T/o" ] && fail "$1: custos get printed a result: $(cat "$T/o")"
  assert_match "^custos get: REFUSED: $2" "$(grep REFUSED "$T/e" || cat "$T/e")" "$1: the reason"
}

get_via none
assert_eq 0 "$RC" "custos get through the proxy passing everything ($(cat "$T/e"))"
cmp -s "$T/a.bin" "$T/out" || fail "custos get through the proxy saved other bytes"

refused content "the bytes received hash to [0-9a-f]{64} but the original of evidence $ID is $SHA"
refused drop-event "the ledger has no ingested event for evidence $ID"
refused event-sha "the ledger's ingested event for the original of evidence $ID \(entry $IDX\) records SHA-256 [0-9a-f]{64}, not $SHA"
refused event-bytes "the inclusion proof of ledger entry $IDX in the signed tree of size [0-9]+ is invalid"
refused proof "the inclusion proof of ledger entry $IDX in the signed tree of size [0-9]+ is invalid"
refused head "the signed tree head \(size [0-9]+\) has an invalid signature: it does not verify under the pinned ledger key $(sed 's/[+]/[+]/g' "$T/ledger.vkey")"

# ---- the entry rewritten on disk ---------------------------------------------
t_stop_server
"$CUSTOS_TAMPER" --home "$HOME_DIR" --rewrite-entry "$IDX" 2>"$T/tamper.log" || fail "custos-tamper: $(cat "$T/tamper.log")"
t_start_server --scrub-rate 0
rc=0
CUSTOS_SERVER="$URL" "$CUSTOS" get "$ID" -o "$T/out" --ledger-key "$T/ledger.vkey" >"$T/o" 2>"$T/e" || rc=$?
assert_eq 3 "$rc" "custos get of an item whose ledger entry was rewritten ($(cat "$T/e"))"
[ ! -e "$T/out" ] || fail "custos get saved an item whose ledger entry was rewritten"
ls "$T" | grep -q custos-part && fail "custos get left its temporary file"
assert_match "^custos get: REFUSED: the inclusion proof of ledger entry $IDX in the signed tree of size [0-9]+ is invalid" \
  "$(cat "$T/e")" "the reason after the entry was rewritten"
t_stop_server
