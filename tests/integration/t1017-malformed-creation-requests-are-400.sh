#!/usr/bin/env bash
# t1017: a POST is checked strictly before anything is created: bad Base64,
# a duplicate key, an empty entry, a trailing comma, a missing device_id with an
# admin token (no device of its own), a recorded_at that is not RFC 3339, a
# sha256 that is not 64 hex digits, and a bad or missing Upload-Length are
# each 400 with a JSON {"error","detail"} and no spool file.
. "$(dirname "$0")/lib.sh"

post() { # post TOKEN LENGTH METADATA
  call -X POST "${TUS[@]}" -H "$(auth "$1")" ${2:+-H "Upload-Length: $2"} -H "Upload-Metadata: $3" "$URL/v1/uploads"
}
refused() { # refused WHAT
  assert_eq 400 "$ST" "$1"
  assert_eq invalid "$(jq -r .error <<<"$BODY")" "error name ($1)"
  [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "no detail ($1)"
  assert_eq "" "$(hdr Location)" "no Location ($1)"
  assert_eq 0 "$(ls "$HOME_DIR/spool" | wc -l)" "no spool file ($1)"
}

t_start_server
REC=$(t_token recorder --device cam-0017)
dev="device_id $(b64 cam-0017)"

post "$REC" 5 "$dev,filename abc"; refused "Base64 of a bad length"
post "$REC" 5 "$dev,filename ab*d"; refused "Base64 with a bad character"
post "$REC" 5 "$dev,filename YQ="; refused "Base64 with short padding"
post "$REC" 5 "$dev,filename YR=="; refused "Base64 with non-zero padding bits"
post "$REC" 5 "$dev,filename $(b64 a) $(b64 b)"; refused "a value with a space"
post "$REC" 5 "$dev,filename $(b64 a),filename $(b64 b)"; refused "a duplicate key"
post "$REC" 5 "$dev,$dev"; refused "a duplicate device_id"
post "$REC" 5 "$dev, "; refused "an empty entry"
post "$REC" 5 "$dev,"; refused "a trailing comma"
post "$REC" 5 "$dev,,filename $(b64 a)"; refused "an empty pair"
post "$ADMIN" 5 "filename $(b64 a.bin)"; refused "admin upload without device_id"
post "$ADMIN" 5 "device_id $(b64 'bad device/1')"; refused "device_id with a slash and a space"
for t in 2026-13-01T00:00:00Z 2026-02-30T00:00:00Z 2026-01-01 "2026-01-01T00:00:00" \
         "yesterday" "2026-01-01T25:00:00Z" "2026-01-01T00:00:00+0100"; do
  post "$REC" 5 "$dev,recorded_at $(b64 "$t")"; refused "recorded_at '$t'"
done
for s in abc "$(printf 'g%.0s' $(seq 64))" "$(printf 'a%.0s' $(seq 63))" "$(printf 'a%.0s' $(seq 65))"; do
  post "$REC" 5 "$dev,sha256 $(b64 "$s")"; refused "sha256 '$s'"
done
for len in "" -1 abc 1e3 5.0 0x10 99999999999999999999999; do
  post "$REC" "$len" "$dev"
  if [ -z "$len" ]; then refused "no Upload-Length"; else refused "Upload-Length '$len'"; fi
done
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Defer-Length: 1' -H "Upload-Metadata: $dev" "$URL/v1/uploads"
refused "Upload-Defer-Length (creation-defer-length is not offered)"

# The same requests made valid are accepted.
post "$REC" 5 "$dev,filename $(b64 a.bin),recorded_at $(b64 2026-01-01T00:00:00+01:00),sha256 $(b64 "$(printf 'A%.0s' $(seq 64))"),is_confidential"
assert_eq 201 "$ST" "a valid POST (empty value, offset time, upper-case hex)"

t_stop_server
