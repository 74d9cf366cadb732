#!/usr/bin/env bash
# t1109: evidence reads (listing, one record, content) are for legal and
# admin tokens and for reviewers assigned to a case holding the item: a
# reviewer with no case and a recorder, even the one that uploaded it, get
# 403 with no evidence data; no token is 401. (t5001: assigned reviewers.)
. "$(dirname "$0")/lib.sh"

get() { # get TOKEN PATH [curl args]
  local tok=$1 p=$2
  shift 2
  rm -f "$T/got"
  ST=$(curl -sS -D "$T/h" -o "$T/got" -w '%{http_code}' ${tok:+-H "$(auth "$tok")"} "$@" "$URL$p")
}

t_start_server
REC=$(t_token recorder --device cam-1109)
REVIEWER=$(t_token reviewer --user rita)
LEGAL=$(t_token legal --user lou)
printf 'secret footage' >"$T/f"
ST=$(curl -sS -D "$T/h" -o /dev/null -w '%{http_code}' -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" \
  -H 'Upload-Length: 14' -H "Upload-Metadata: device_id $(b64 cam-1109),filename $(b64 s.bin)" \
  --data-binary "@$T/f" "$URL/v1/uploads")
assert_eq 201 "$ST" "upload"
ev=$(hdr Custos-Evidence-Id)
sha=$(hdr Custos-SHA256)

for p in "/v1/evidence" "/v1/evidence?device=cam-1109" "/v1/evidence/$ev" "/v1/evidence/$ev/content"; do
  for who in REVIEWER REC; do
    get "${!who}" "$p"
    assert_eq 403 "$ST" "$who GET $p"
    assert_eq forbidden "$(jq -r .error "$T/got")" "$who GET $p error"
    ! grep -q "$sha" "$T/got" || fail "$who GET $p leaked the evidence"
    ! grep -q 'secret footage' "$T/got" || fail "$who GET $p leaked the content"
  done
  get "" "$p"
  assert_eq 401 "$ST" "GET $p without a token"
  for who in LEGAL ADMIN; do
    get "${!who}" "$p"
    assert_eq 200 "$ST" "$who GET $p"
  done
done
get "$REVIEWER" "/v1/evidence/$ev/content" -H 'Range: bytes=0-5'
assert_eq 403 "$ST" "reviewer range request"
get "$LEGAL" "/v1/evidence/$ev/content"
cmp -s "$T/got" "$T/f" || fail "legal reads the original"

t_stop_server
