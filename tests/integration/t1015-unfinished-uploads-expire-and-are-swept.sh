#!/usr/bin/env bash
# t1015: expiration: POST and PATCH responses carry Upload-Expires as an
# IMF-fixdate a TTL ahead; with --upload-ttl 1 --sweep-interval 1 an
# unfinished upload is swept: HEAD/PATCH become 404/410 and its spool file is
# removed, while an upload completed in time stays evidence.
. "$(dirname "$0")/lib.sh"

IMF='^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT$'
# expires_in HEADER-VALUE: seconds from now (may be negative).
expires_in() { echo $(($(date -u -d "$1" +%s) - $(date -u +%s))); }

# First, the default TTL (7 days) as a long-lived server advertises it.
t_start_server
REC=$(t_token recorder --device cam-0015)
md="device_id $(b64 cam-0015)"
printf 'abcdefghij' >"$T/x"
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 20' -H "Upload-Metadata: $md" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST"
exp=$(hdr Upload-Expires)
assert_match "$IMF" "$exp" "Upload-Expires on POST is an IMF-fixdate"
d=$(expires_in "$exp")
[ "$d" -ge $((7 * 86400 - 60)) ] && [ "$d" -le $((7 * 86400 + 60)) ] || fail "Upload-Expires is $d s ahead, not 7 days"
up=$(hdr Location)
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
assert_eq 204 "$ST" "PATCH"
assert_match "$IMF" "$(hdr Upload-Expires)" "Upload-Expires on PATCH is an IMF-fixdate"
call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
[ -z "$(hdr Upload-Expires)" ] || assert_match "$IMF" "$(hdr Upload-Expires)" "Upload-Expires on HEAD"
t_stop_server

# Then a server that forgets unfinished uploads after one idle second.
t_start_server --upload-ttl 1 --sweep-interval 1
# One upload completed at once (a single POST) must survive the sweeps.
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 10' -H "Upload-Metadata: $md" \
  --data-binary "@$T/x" "$URL/v1/uploads"
assert_eq 201 "$ST" "complete POST"
done_up=$(hdr Location)
ev=$(hdr Custos-Evidence-Id)
[ -n "$ev" ] || fail "complete POST made no evidence"
# One left unfinished.
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 20' -H "Upload-Metadata: $md" \
  --data-binary "@$T/x" "$URL/v1/uploads"
assert_eq 201 "$ST" "partial POST"
exp=$(hdr Upload-Expires)
assert_match "$IMF" "$exp" "Upload-Expires with --upload-ttl 1"
d=$(expires_in "$exp")
[ "$d" -ge -1 ] && [ "$d" -le 3 ] || fail "Upload-Expires is $d s ahead with --upload-ttl 1"
up=$(hdr Location)
id=${up##*/}
[ -f "$HOME_DIR/spool/$id.part" ] || fail "no spool file for the partial upload"

gone=""
for _ in $(seq 1 100); do
  call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
  if [ "$ST" = 404 ] || [ "$ST" = 410 ]; then gone=$ST; break; fi
  assert_eq 200 "$ST" "HEAD while waiting for expiry"
  sleep 0.1
done
[ -n "$gone" ] || fail "the unfinished upload did not expire within 10 s (ttl 1 s, sweep every 1 s)"
assert_eq "" "$(hdr Upload-Offset)" "no Upload-Offset on an expired upload"
[ ! -e "$HOME_DIR/spool/$id.part" ] || fail "spool file of an expired upload is still there"
call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H 'Upload-Offset: 10' --data-binary "@$T/x" "$up"
assert_match '^(404|410)$' "$ST" "PATCH on an expired upload"
[ ! -e "$HOME_DIR/spool/$id.part" ] || fail "a PATCH on an expired upload recreated its spool file"

# The completed one is untouched by the sweeps.
sleep 1.5
call -I "${TUS[@]}" -H "$(auth "$REC")" "$done_up"
assert_eq 200 "$ST" "HEAD of the completed upload after the sweeps"
assert_eq 10 "$(hdr Upload-Offset)" "completed upload offset"
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev"
assert_eq 200 "$ST" "evidence survives the sweeps"
t_stop_server
