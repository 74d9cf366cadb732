#!/usr/bin/env bash
# t1105: pagination: walking next_cursor with limit=2 until it is null
# visits every item of the listing exactly once, in the same order as one big
# page, for asc and desc, unfiltered and filtered (device with a time range,
# officer, case, sha256); a page never holds more than limit items.
. "$(dirname "$0")/lib.sh"

put() { # put FILE DEVICE OFFICER CASE RECORDED_AT
  local md
  md="device_id $(b64 "$2"),recorded_at $(b64 "$5")"
  [ -n "$3" ] && md+=",officer_id $(b64 "$3")"
  [ -n "$4" ] && md+=",case_id $(b64 "$4")"
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$ADMIN")" -H "Upload-Length: $(stat -c %s "$1")" \
    -H "Upload-Metadata: $md" --data-binary "@$1" "$URL/v1/uploads"
  assert_eq 201 "$ST" "upload $1 for $2"
}
# walk QUERY: the ids of all pages of ?QUERY&limit=2, one per line.
walk() {
  local cursor="" pages=0 out=""
  while :; do
    call -H "$(auth "$LEGAL")" "$URL/v1/evidence?$1&limit=2${cursor:+&cursor=$cursor}"
    assert_eq 200 "$ST" "page $pages of ?$1"
    local n
    n=$(jq '.items | length' <<<"$BODY")
    [ "$n" -le 2 ] || fail "page $pages of ?$1 has $n items with limit=2"
    out+=$(jq -r '.items[].id' <<<"$BODY")$'\n'
    cursor=$(jq -r '.next_cursor // empty' <<<"$BODY")
    [ -n "$cursor" ] || break
    pages=$((pages + 1))
    [ "$pages" -lt 50 ] || fail "?$1 did not end after 50 pages"
  done
  grep -v '^$' <<<"$out" || true
}
declare -A ORDER
check() { # check QUERY COUNT
  local all paged
  for order in asc desc; do
    call -H "$(auth "$LEGAL")" "$URL/v1/evidence?$1&order=$order&limit=1000"
    assert_eq 200 "$ST" "one page of ?$1&order=$order"
    all=$(jq -r '.items[].id' <<<"$BODY")
    assert_eq "$2" "$(grep -c . <<<"$all" || true)" "items in ?$1&order=$order"
    paged=$(walk "$1&order=$order")
    assert_eq "" "$(sort <<<"$paged" | uniq -d)" "items seen twice walking ?$1&order=$order"
    assert_eq "$all" "$paged" "pages of ?$1&order=$order, joined, equal one page"
    ORDER[$order]=$all
  done
  assert_eq "${ORDER[asc]}" "$(tac <<<"${ORDER[desc]}")" "desc is asc reversed for ?$1"
}

t_start_server
LEGAL=$(t_token legal --user lou)
for i in 1 2 3 4 5 6 7; do
  printf 'clip %s' "$i" >"$T/p$i"
  # Out of order on purpose: the listing must sort by recorded_at.
  day=$(((i * 3) % 7 + 1))
  put "$T/p$i" dev-p "off-$((i % 2))" "$([ $((i % 3)) = 0 ] || echo case-p)" "2026-02-0${day}T08:00:00Z"
done
printf 'same' >"$T/same"
put "$T/same" dev-q off-0 case-p 2026-02-01T09:00:00Z
put "$T/same" dev-q off-0 "" 2026-02-02T09:00:00Z
put "$T/same" dev-r "" "" 2026-02-03T09:00:00Z

check "x=1" 10
check "device=dev-p" 7
check "device=dev-p&from=2026-02-02T00:00:00Z&to=2026-02-07T00:00:00Z" 5
check "officer=off-0" 5
check "officer=off-1" 4
check "case=case-p" 6
check "sha256=$(sha256sum "$T/same" | cut -d' ' -f1)" 3
check "device=dev-p&case=case-p" 5

# Device listings are in recorded_at order.
call -H "$(auth "$LEGAL")" "$URL/v1/evidence?device=dev-p&order=asc"
times=$(jq -r '.items[].recorded_at' <<<"$BODY")
assert_eq "$(sort <<<"$times")" "$times" "device listing in recorded_at order"
assert_eq 7 "$(sort -u <<<"$times" | wc -l)" "distinct times"

# Exactly limit items and no more: next_cursor may be set, but the next
# page is then empty and ends the walk.
call -H "$(auth "$LEGAL")" "$URL/v1/evidence?device=dev-q&limit=2"
assert_eq 2 "$(jq '.items | length' <<<"$BODY")" "a full page"
c=$(jq -r '.next_cursor // empty' <<<"$BODY")
if [ -n "$c" ]; then
  call -H "$(auth "$LEGAL")" "$URL/v1/evidence?device=dev-q&limit=2&cursor=$c"
  assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "the page after the last"
  assert_eq null "$(jq -r .next_cursor <<<"$BODY")" "next_cursor after the last page"
fi

t_stop_server
