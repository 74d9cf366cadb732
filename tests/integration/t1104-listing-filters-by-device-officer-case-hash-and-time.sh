#!/usr/bin/env bash
# t1104: GET /v1/evidence filters: by device (with from/to on recorded_at,
# time zones honoured), by officer, by case, by sha256, and combinations;
# each returns exactly the matching records, device and officer listings in
# recorded_at order (asc by default, desc on request), and next_cursor is
# null when everything fit.
. "$(dirname "$0")/lib.sh"

declare -A EV
# put NAME DEVICE OFFICER CASE RECORDED_AT: uploads a small distinct file.
put() {
  local md
  md="device_id $(b64 "$2"),recorded_at $(b64 "$5"),filename $(b64 "$1.bin")"
  [ -n "$3" ] && md+=",officer_id $(b64 "$3")"
  [ -n "$4" ] && md+=",case_id $(b64 "$4")"
  printf 'evidence %s' "$1" >"$T/$1"
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$ADMIN")" -H "Upload-Length: $(stat -c %s "$T/$1")" \
    -H "Upload-Metadata: $md" --data-binary "@$T/$1" "$URL/v1/uploads"
  assert_eq 201 "$ST" "upload $1"
  EV[$1]=$(hdr Custos-Evidence-Id)
}
# list QUERY: the names of the listed records, in order, space-separated.
list() {
  call -H "$(auth "$LEGAL")" "$URL/v1/evidence?$1"
  assert_eq 200 "$ST" "GET /v1/evidence?$1"
  assert_eq null "$(jq -r .next_cursor <<<"$BODY")" "next_cursor for ?$1"
  local id n out=""
  for id in $(jq -r '.items[].id' <<<"$BODY"); do
    for n in "${!EV[@]}"; do [ "${EV[$n]}" = "$id" ] && out+="$n "; done
  done
  printf '%s' "${out% }"
}
sorted() { tr ' ' '\n' <<<"$1" | sort | tr '\n' ' ' | sed 's/ $//'; }
expect() { assert_eq "$2" "$(list "$1")" "?$1"; }
expect_set() { assert_eq "$(sorted "$2")" "$(sorted "$(list "$1")")" "?$1 (as a set)"; }

t_start_server
LEGAL=$(t_token legal --user lou)
put e1 dev-a off-1 case-x 2026-01-01T10:00:00Z
put e2 dev-a off-2 ""     2026-01-02T10:00:00Z
put e3 dev-a off-1 case-y 2026-01-03T10:00:00Z
put e4 dev-b off-1 case-x 2026-01-02T12:00:00Z
put e5 dev-b ""    ""     2026-01-04T00:00:00Z
put e6 dev-a off-2 case-x 2026-01-05T00:00:00+02:00   # 2026-01-04T22:00:00Z

expect_set "" "e1 e2 e3 e4 e5 e6"
expect "device=dev-a" "e1 e2 e3 e6"
expect "device=dev-a&order=asc" "e1 e2 e3 e6"
expect "device=dev-a&order=desc" "e6 e3 e2 e1"
expect "device=dev-b" "e4 e5"
expect "device=dev-none" ""
expect "device=dev-a&from=2026-01-02T00:00:00Z&to=2026-01-04T00:00:00Z" "e2 e3"
expect "device=dev-a&from=2026-01-02T10:00:00Z" "e2 e3 e6"
expect "device=dev-a&to=2026-01-02T00:00:00Z" "e1"
expect "device=dev-a&from=2026-01-04T23:00:00%2B01:00" "e6"
expect "device=dev-a&from=2026-01-04T23:30:00%2B01:00" ""
expect "device=dev-a&from=2026-01-02T00:00:00Z&to=2026-01-04T00:00:00Z&order=desc" "e3 e2"
expect "officer=off-1" "e1 e4 e3"
expect "officer=off-1&order=desc" "e3 e4 e1"
expect "officer=off-1&from=2026-01-02T00:00:00Z" "e4 e3"
expect "officer=off-2" "e2 e6"
expect_set "case=case-x" "e1 e4 e6"
expect_set "case=case-y" "e3"
expect_set "case=case-z" ""
expect_set "case=case-x&device=dev-a" "e1 e6"
expect_set "case=case-x&officer=off-1" "e1 e4"
expect_set "case=case-x&from=2026-01-02T00:00:00Z" "e4 e6"
expect "device=dev-a&officer=off-2" "e2 e6"
expect "device=dev-b&officer=off-2" ""
expect_set "from=2026-01-03T00:00:00Z" "e3 e5 e6"
expect_set "to=2026-01-02T11:00:00Z" "e1 e2"
expect_set "from=2026-01-02T00:00:00Z&to=2026-01-03T00:00:00Z" "e2 e4"
sha3=$(sha256sum "$T/e3" | cut -d' ' -f1)
expect "sha256=$sha3" "e3"
expect "sha256=$sha3&device=dev-b" ""
expect "sha256=$(printf nothing | sha256sum | cut -d' ' -f1)" ""

# Items are whole records.
call -H "$(auth "$LEGAL")" "$URL/v1/evidence?device=dev-b&order=asc"
assert_eq "${EV[e4]}" "$(jq -r '.items[0].id' <<<"$BODY")" "first item id"
assert_eq off-1 "$(jq -r '.items[0].officer_id' <<<"$BODY")" "item officer_id"
assert_eq case-x "$(jq -r '.items[0].case_id' <<<"$BODY")" "item case_id"
assert_eq "$(sha256sum "$T/e4" | cut -d' ' -f1)" "$(jq -r '.items[0].sha256' <<<"$BODY")" "item sha256"

t_stop_server
