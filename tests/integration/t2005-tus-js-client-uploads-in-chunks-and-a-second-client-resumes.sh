#!/usr/bin/env bash
# t2005: tus-js-client 4.3.1 from npm uploads a 3 MiB file in 256 KiB chunks
# with a recorder token, resumes in a second client an upload the first one
# abandoned after one chunk (HEAD, then PATCHes from the server's offset, no
# byte sent twice), and uploads with uploadDataDuringCreation; each ends as
# evidence with the file's SHA-256 and metadata; the second client also
# resumes after the server was killed (SIGKILL) and restarted.
. "$(dirname "$0")/lib.sh"

JS=${CUSTOS_JS:-$(cd "$(dirname "$0")" && pwd)/js}
command -v node >/dev/null ||
  fail "node is not installed: install Node.js 20 and npm, then run scripts/test-js-deps.sh"
[ -f "$JS/node_modules/tus-js-client/package.json" ] ||
  fail "tus-js-client is missing from $JS/node_modules: run scripts/test-js-deps.sh"
ver=$(node -p "require('$JS/node_modules/tus-js-client/package.json').version")
assert_eq 4.3.1 "$ver" "tus-js-client version in $JS/node_modules (run scripts/test-js-deps.sh)"

KIB=1024
CHUNK=$((256 * KIB))
SIZE=$((3 * 1024 * KIB + 4321)) # 12 full chunks and a short one
NCHUNKS=$(((SIZE + CHUNK - 1) / CHUNK))

t_start_server
CUSTOS_TOKEN=$(t_token recorder --device cam-6)
[ -n "$CUSTOS_TOKEN" ] || fail "could not create a recorder token"
export CUSTOS_TOKEN CUSTOS_DEVICE=cam-6
EP="$URL/v1/uploads"
tusjs() { (cd "$JS" && node tus-client.cjs "$@"); }
# Checks that upload result $1 (JSON) became evidence of file $2.
check_evidence() {
  local res=$1 file=$2 what=$3 want ev out
  want=$(sha256sum "$file" | cut -d' ' -f1)
  assert_eq true "$(jq -r .ok <<<"$res")" "$what: the client reports success"
  assert_eq "$want" "$(jq -r .sha256 <<<"$res")" "$what: Custos-SHA256 of the last answer"
  ev=$(jq -r .evidence <<<"$res")
  assert_match '^[0-9a-f-]{36}$' "$ev" "$what: Custos-Evidence-Id"
  out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$ev")
  assert_eq 200 "$(t_status "$out")" "$what: GET the evidence"
  assert_eq "$want" "$(t_body "$out" | jq -r .sha256)" "$what: evidence sha256"
  assert_eq "$(stat -c %s "$file")" "$(t_body "$out" | jq -r .size)" "$what: evidence size"
  assert_eq "$(basename "$file")" "$(t_body "$out" | jq -r .filename)" "$what: evidence filename"
  assert_eq cam-6 "$(t_body "$out" | jq -r .device_id)" "$what: evidence device"
  out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$ev/content")
  assert_eq 200 "$(t_status "$out")" "$what: GET the content"
  curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$ev/content" | sha256sum | cut -d' ' -f1 >"$T/got"
  assert_eq "$want" "$(cat "$T/got")" "$what: content served back"
}
methods() { jq -r '[.requests[] | .method] | join(" ")' <<<"$1"; }

# ---- one client, whole file in chunks -------------------------------------
t_noise "$SIZE" "$T/whole.bin"
res=$(tusjs full "$EP" "$T/whole.bin") || fail "tus-js-client upload failed: $res"
check_evidence "$res" "$T/whole.bin" "chunked upload"
want_methods="POST$(printf ' PATCH%.0s' $(seq 1 "$NCHUNKS"))"
assert_eq "$want_methods" "$(methods "$res")" "requests of the chunked upload"
assert_eq "$(seq -s ' ' 0 "$CHUNK" $(((NCHUNKS - 1) * CHUNK)))" \
  "$(jq -r '[.requests[] | select(.method == "PATCH") | .offset] | join(" ")' <<<"$res")" "PATCH offsets"
assert_eq 204 "$(jq -r '[.requests[] | select(.method == "PATCH") | .status] | unique | join(",")' <<<"$res")" \
  "status of every PATCH"

# ---- a first client gives up after one chunk, a second one resumes --------
t_noise "$SIZE" "$T/resumed.bin"
before=$(metric custos_upload_bytes_received_total)
res1=$(tusjs abort "$EP" "$T/resumed.bin") || fail "first client failed: $res1"
assert_eq true "$(jq -r .aborted <<<"$res1")" "the first client aborted"
assert_eq "POST PATCH" "$(methods "$res1")" "requests of the first client"
url=$(jq -r .url <<<"$res1")
assert_match "^$EP/[0-9a-f-]{36}\$" "$url" "upload URL of the first client"
curl -sS -o /dev/null -D "$T/h.head" -I -H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $CUSTOS_TOKEN" "$url"
assert_eq "$CHUNK" "$(t_header Upload-Offset "$T/h.head")" "server offset after the first client gave up"
assert_eq "$SIZE" "$(t_header Upload-Length "$T/h.head")" "Upload-Length after the first client gave up"

res2=$(tusjs resume "$EP" "$T/resumed.bin" "$url") || fail "second client failed: $res2"
assert_eq "$url" "$(jq -r .url <<<"$res2")" "the second client used the first one's upload"
check_evidence "$res2" "$T/resumed.bin" "resumed upload"
assert_eq "HEAD$(printf ' PATCH%.0s' $(seq 2 "$NCHUNKS"))" "$(methods "$res2")" "requests of the second client"
assert_eq "200 $CHUNK" "$(jq -r '.requests[0] | "\(.status) \(.resOffset)"' <<<"$res2")" "HEAD answer to the second client"
assert_eq "$CHUNK" "$(jq -r '.requests[1].offset' <<<"$res2")" "first PATCH of the second client starts at the server's offset"
after=$(metric custos_upload_bytes_received_total)
assert_eq "$SIZE" "$((after - before))" "bytes the server received for the abandoned-then-resumed upload"

# ---- the same, with a kill -9 and a restart in between ---------------------
t_noise "$SIZE" "$T/killed.bin"
res1=$(tusjs abort "$EP" "$T/killed.bin") || fail "first client failed: $res1"
assert_eq "POST PATCH" "$(methods "$res1")" "requests of the first client (before the kill)"
url=$(jq -r .url <<<"$res1")
t_kill_server
t_start_server --listen "127.0.0.1:$PORT"
assert_eq "$EP" "$URL/v1/uploads" "endpoint after the restart on the same port"
res2=$(tusjs resume "$EP" "$T/killed.bin" "$url") || fail "second client failed after the restart: $res2"
check_evidence "$res2" "$T/killed.bin" "upload resumed after kill -9"
assert_eq "HEAD 200 $CHUNK" "$(jq -r '.requests[0] | "\(.method) \(.status) \(.resOffset)"' <<<"$res2")" \
  "HEAD answer after kill -9"
assert_eq "$CHUNK" "$(jq -r '.requests[1].offset' <<<"$res2")" "first PATCH after kill -9 starts at the durable offset"
assert_eq "$((SIZE - CHUNK))" "$(metric custos_upload_bytes_received_total)" "bytes received since the restart"

# ---- creation-with-upload -------------------------------------------------
t_noise "$SIZE" "$T/creation.bin"
res=$(tusjs creation "$EP" "$T/creation.bin") || fail "uploadDataDuringCreation upload failed: $res"
check_evidence "$res" "$T/creation.bin" "uploadDataDuringCreation"
assert_eq "POST$(printf ' PATCH%.0s' $(seq 2 "$NCHUNKS"))" "$(methods "$res")" "requests with uploadDataDuringCreation"
assert_eq "201 $CHUNK" "$(jq -r '.requests[0] | "\(.status) \(.resOffset)"' <<<"$res")" "POST with the first chunk"
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
