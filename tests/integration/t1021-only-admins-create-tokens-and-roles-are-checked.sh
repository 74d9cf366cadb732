#!/usr/bin/env bash
# t1021: POST /v1/tokens: recorder, reviewer and legal tokens get 403; an
# admin gets 400 for an unknown role, a recorder without a device, a device on
# a non-recorder, a reviewer or legal token without a user, bad names and a
# body that is not a JSON object; a good request is 201 with the secret once,
# and the new token works for its role.
. "$(dirname "$0")/lib.sh"

mk() { call -X POST -H "$(auth "$1")" -H 'Content-Type: application/json' --data-binary "$2" "$URL/v1/tokens"; }

t_start_server
REC=$(t_token recorder --device cam-0021)
REVIEWER=$(t_token reviewer --user rita)
LEGAL=$(t_token legal --user lou)
[ -n "$REC" ] && [ -n "$REVIEWER" ] && [ -n "$LEGAL" ] || fail "token creation through the CLI"

for who in REC REVIEWER LEGAL; do
  mk "${!who}" '{"role":"admin"}'
  assert_eq 403 "$ST" "$who creating an admin token"
  assert_eq forbidden "$(jq -r .error <<<"$BODY")" "403 error name"
  mk "${!who}" '{"role":"recorder","device":"cam-x"}'
  assert_eq 403 "$ST" "$who creating a recorder token"
done

for body in '{"role":"superuser"}' '{"role":"Admin"}' '{}' '{"role":"recorder"}' \
            '{"role":"recorder","device":""}' '{"role":"recorder","device":"cam/1"}' \
            '{"role":"reviewer"}' '{"role":"legal"}' '{"role":"admin","device":"cam-1"}' \
            '{"role":"reviewer","user":"bad user"}' '{"role":"recorder","device":"x","user":"u"}z' \
            '[1,2]' 'not json' ''; do
  mk "$ADMIN" "$body"
  assert_eq 400 "$ST" "admin creating a token with body '$body'"
  assert_eq invalid "$(jq -r .error <<<"$BODY")" "400 error name for '$body'"
  [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "400 without detail for '$body'"
  [ "$(jq -r '.token // empty' <<<"$BODY")" = "" ] || fail "a refused request returned a token"
done

mk "$ADMIN" '{"role":"recorder","device":"cam-0021b"}'
assert_eq 201 "$ST" "admin creating a recorder token"
sec=$(jq -r .token <<<"$BODY")
assert_eq recorder "$(jq -r .role <<<"$BODY")" "role of the new token"
[ -n "$sec" ] && [ "$sec" != null ] || fail "no secret in the 201"
! grep -rqF "$sec" "$HOME_DIR/index" || fail "the secret is stored in the index in clear"
call -X POST -H 'Tus-Resumable: 1.0.0' -H "$(auth "$sec")" -H 'Upload-Length: 1' \
  -H "Upload-Metadata: device_id $(b64 cam-0021b)" "$URL/v1/uploads"
assert_eq 201 "$ST" "the new recorder token uploads for its device"
call -H "$(auth "$sec")" "$URL/v1/evidence"
assert_eq 403 "$ST" "the new recorder token cannot read evidence"

mk "$ADMIN" '{"role":"legal","user":"lena"}'
assert_eq 201 "$ST" "admin creating a legal token"
call -H "$(auth "$(jq -r .token <<<"$BODY")")" "$URL/v1/evidence"
assert_eq 200 "$ST" "the new legal token reads evidence"

t_stop_server
