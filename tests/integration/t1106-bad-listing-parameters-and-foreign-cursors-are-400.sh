#!/usr/bin/env bash
# t1106: GET /v1/evidence refuses what it cannot honour with 400 and a JSON
# {"error","detail"}: malformed device/officer/case/sha256 filters, times that
# are not RFC 3339, a limit outside 1..1000, an unknown order, a cursor that
# is not one, and a cursor taken from another listing (another device, a
# case, a hash, or a filtered listing handed to the unfiltered one).
. "$(dirname "$0")/lib.sh"

put() { # put N DEVICE CASE
  printf 'item %s' "$1" >"$T/i$1"
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$ADMIN")" -H "Upload-Length: $(stat -c %s "$T/i$1")" \
    -H "Upload-Metadata: device_id $(b64 "$2"),case_id $(b64 "$3"),recorded_at $(b64 "2026-03-0${1}T00:00:00Z")" \
    --data-binary "@$T/i$1" "$URL/v1/uploads"
  assert_eq 201 "$ST" "upload $1"
}
refused() { # refused QUERY
  call -H "$(auth "$LEGAL")" "$URL/v1/evidence?$1"
  assert_eq 400 "$ST" "GET /v1/evidence?$1"
  assert_eq invalid "$(jq -r .error <<<"$BODY")" "error name for ?$1"
  [ -n "$(jq -r '.detail // empty' <<<"$BODY")" ] || fail "no detail for ?$1"
}
cursor_of() { # cursor_of QUERY: next_cursor of its first page with limit=1
  call -H "$(auth "$LEGAL")" "$URL/v1/evidence?$1&limit=1"
  assert_eq 200 "$ST" "first page of ?$1"
  local c
  c=$(jq -r '.next_cursor // empty' <<<"$BODY")
  [ -n "$c" ] || fail "?$1&limit=1 gave no next_cursor"
  printf '%s' "$c"
}

t_start_server
LEGAL=$(t_token legal --user lou)
for i in 1 2 3 4; do put "$i" "dev-$((i % 2))" "case-$((i % 2))"; done
put 5 dev-1 case-0
put 6 dev-1 case-0

for q in "device=bad%2Fdevice" "device=" "device=a%20b" "device=$(printf 'd%.0s' $(seq 129))" \
         "officer=o%3Bdrop" "officer=" "case=c%2F1" "case=" \
         "sha256=abc" "sha256=$(printf 'a%.0s' $(seq 63))" "sha256=$(printf 'a%.0s' $(seq 65))" \
         "sha256=$(printf 'g%.0s' $(seq 64))" \
         "from=yesterday" "from=2026-01-01" "to=2026-13-01T00:00:00Z" "to=1700000000" \
         "device=dev-1&from=2026-02-30T00:00:00Z" \
         "limit=0" "limit=-1" "limit=1001" "limit=abc" "limit=" "limit=2.5" \
         "order=up" "order=ascending" "order=" \
         "cursor=%21%21%21" "cursor=a" "device=dev-1&cursor=a"; do
  refused "$q"
done

# Cursors belong to the listing that made them.
c_dev1=$(cursor_of "device=dev-1")
c_case1=$(cursor_of "case=case-1")
c_all=$(cursor_of "x=1")
sha=$(sha256sum "$T/i1" | cut -d' ' -f1)
# The dev-1 cursor is fine where it came from ...
call -H "$(auth "$LEGAL")" "$URL/v1/evidence?device=dev-1&limit=1&cursor=$c_dev1"
assert_eq 200 "$ST" "a cursor in its own listing"
# ... and refused elsewhere.
refused "device=dev-0&cursor=$c_dev1"
refused "case=case-1&cursor=$c_dev1"
refused "sha256=$sha&cursor=$c_dev1"
refused "device=dev-1&cursor=$c_case1"
refused "case=case-0&cursor=$c_case1"
refused "device=dev-1&cursor=$c_all"
refused "case=case-1&cursor=$c_all"
refused "sha256=$sha&cursor=$c_all"
# A filtered listing's cursor handed to the unfiltered listing.
refused "cursor=$c_dev1"
refused "cursor=$c_case1"

t_stop_server
