#!/usr/bin/env bash
# t1101: a file that is not media is still evidence: it is stored as
# received (byte-identical, hash unchanged), and the background probe marks
# it media.status "unparseable" with a reason instead of rejecting it.
. "$(dirname "$0")/lib.sh"

# probed EVID: polls the record until media.status is not "pending" (20 s).
probed() {
  for _ in $(seq 1 200); do
    call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1"
    assert_eq 200 "$ST" "GET evidence $1"
    [ "$(jq -r '.media.status' <<<"$BODY")" != pending ] && return 0
    sleep 0.1
  done
  fail "evidence $1 is still pending after 20 s"
}

t_start_server
REC=$(t_token recorder --device cam-1101)
t_noise 20000 "$T/report.txt" $'This is a shift report, not a video.\n'
want=$(sha256sum "$T/report.txt" | cut -d' ' -f1)
size=$(stat -c %s "$T/report.txt")
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Length: $size" \
  -H "Upload-Metadata: device_id $(b64 cam-1101),filename $(b64 report.txt)" --data-binary "@$T/report.txt" \
  "$URL/v1/uploads"
assert_eq 201 "$ST" "upload of a non-media file"
ev=$(hdr Custos-Evidence-Id)
[ -n "$ev" ] || fail "a non-media file did not become evidence"
assert_eq "$want" "$(hdr Custos-SHA256)" "Custos-SHA256"

probed "$ev"
assert_eq unparseable "$(jq -r .media.status <<<"$BODY")" "media.status of a non-media file"
reason=$(jq -r '.media.reason // empty' <<<"$BODY")
[ -n "$reason" ] || fail "media.reason is missing for an unparseable file"
assert_eq "$want" "$(jq -r .sha256 <<<"$BODY")" "evidence sha256 unchanged"
assert_eq "$size" "$(jq -r .size <<<"$BODY")" "evidence size unchanged"
assert_eq report.txt "$(jq -r .filename <<<"$BODY")" "evidence filename"

obj="$HOME_DIR/objects/sha256/${want:0:2}/${want:2:2}/$want"
cmp -s "$obj" "$T/report.txt" || fail "the stored object is not the file as received"
curl -sS -o "$T/got" -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev/content"
cmp -s "$T/got" "$T/report.txt" || fail "the content served is not the file as received"

# In the listing too, flagged.
call -H "$(auth "$ADMIN")" "$URL/v1/evidence?device=cam-1101"
assert_eq unparseable "$(jq -r '.items[0].media.status' <<<"$BODY")" "listing shows the media status"

t_stop_server
