#!/usr/bin/env bash
# t1010: upload and evidence endpoints need "Authorization: Bearer <token>":
# no header, another scheme, an empty or unknown secret are each 401 with
# WWW-Authenticate and a JSON {"error","detail"}, and nothing is created.
. "$(dirname "$0")/lib.sh"

is_401() {
  assert_eq 401 "$ST" "$1"
  assert_match '^Bearer' "$(hdr WWW-Authenticate)" "WWW-Authenticate ($1)"
  if [[ "$1" != HEAD* ]]; then
    assert_eq unauthorized "$(jq -r .error <<<"$BODY")" "401 error name ($1)"
    [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "401 without a JSON detail ($1)"
  fi
}

t_start_server
REC=$(t_token recorder --device cam-0010)
md="device_id $(b64 cam-0010)"
printf 'abc' >"$T/x"

# An upload to aim at.
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H 'Upload-Length: 3' -H "Upload-Metadata: $md" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST with a good token"
up=$(hdr Location)
id=${up##*/}

for a in none "Basic $(b64 admin:admin)" "Bearer" "Bearer " "Bearer cus_not-a-real-token" \
         "Bearer ${REC}x" "Token $REC"; do
  ah=()
  [ "$a" = none ] || ah=(-H "Authorization: $a")
  call -X POST "${TUS[@]}" "${ah[@]}" -H 'Upload-Length: 3' -H "Upload-Metadata: $md" "$URL/v1/uploads"
  is_401 "POST with Authorization '$a'"
  call -I "${TUS[@]}" "${ah[@]}" "$up"
  is_401 "HEAD with Authorization '$a'"
  call -X PATCH "${TUS[@]}" "${OCT[@]}" "${ah[@]}" -H 'Upload-Offset: 0' --data-binary "@$T/x" "$up"
  is_401 "PATCH with Authorization '$a'"
  call -X DELETE "${TUS[@]}" "${ah[@]}" "$up"
  is_401 "DELETE with Authorization '$a'"
  call "${ah[@]}" "$URL/v1/evidence"
  is_401 "GET /v1/evidence with Authorization '$a'"
  call -X POST "${ah[@]}" -H 'Content-Type: application/json' -d '{"role":"admin"}' "$URL/v1/tokens"
  is_401 "POST /v1/tokens with Authorization '$a'"
done
assert_eq 1 "$(ls "$HOME_DIR/spool" | wc -l)" "only the authorized upload exists"
assert_eq 0 "$(stat -c %s "$HOME_DIR/spool/$id.part")" "no byte written without a token"

t_stop_server
