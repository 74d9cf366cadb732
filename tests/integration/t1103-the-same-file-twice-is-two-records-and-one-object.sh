#!/usr/bin/env bash
# t1103: the same bytes uploaded twice (by two devices) make two evidence
# records with different ids but one object file (0444) in the store, and
# GET /v1/evidence?sha256=... lists both; both serve the same bytes.
. "$(dirname "$0")/lib.sh"


t_start_server
A=$(t_token recorder --device cam-1103a)
B=$(t_token recorder --device cam-1103b)
# Text, not random bytes (which now and then pass for media and get
# renditions, objects too): this test counts objects.
{ yes "custos dedup test $RANDOM$RANDOM" || true; } | head -c 123457 >"$T/f"
want=$(sha256sum "$T/f" | cut -d' ' -f1)
ids=()
for tok in "$A" "$B" "$A"; do
  call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$tok")" -H 'Upload-Length: 123457' \
    -H "Upload-Metadata: filename $(b64 same.bin)" --data-binary "@$T/f" "$URL/v1/uploads"
  assert_eq 201 "$ST" "upload #$((${#ids[@]} + 1))"
  assert_eq "$want" "$(hdr Custos-SHA256)" "Custos-SHA256 #$((${#ids[@]} + 1))"
  ids+=("$(hdr Custos-Evidence-Id)")
done
[ "${ids[0]}" != "${ids[1]}" ] && [ "${ids[1]}" != "${ids[2]}" ] && [ "${ids[0]}" != "${ids[2]}" ] ||
  fail "the same file got the same evidence id twice: ${ids[*]}"

assert_eq 1 "$(find "$HOME_DIR/objects" -type f | wc -l)" "object files for one content"
obj="$HOME_DIR/objects/sha256/${want:0:2}/${want:2:2}/$want"
assert_eq 444 "$(stat -c %a "$obj")" "object mode"
cmp -s "$obj" "$T/f" || fail "object differs"
assert_eq 0 "$(ls "$HOME_DIR/spool" | wc -l)" "spool files left"

call -H "$(auth "$ADMIN")" "$URL/v1/evidence?sha256=$want"
assert_eq 200 "$ST" "list by sha256"
got=$(jq -r '.items[].id' <<<"$BODY" | sort | tr '\n' ' ')
assert_eq "$(printf '%s\n' "${ids[@]}" | sort | tr '\n' ' ')" "$got" "evidence listed by sha256"
assert_eq "$want" "$(jq -r '[.items[].sha256] | unique | join(",")' <<<"$BODY")" "listed hashes"
devs=$(jq -r '[.items[].device_id] | sort | join(",")' <<<"$BODY")
assert_eq cam-1103a,cam-1103a,cam-1103b "$devs" "each record keeps its own device"

call -H "$(auth "$ADMIN")" "$URL/v1/evidence?sha256=$(printf y | sha256sum | cut -d' ' -f1)"
assert_eq 0 "$(jq '.items | length' <<<"$BODY")" "another hash lists nothing"
for id in "${ids[@]}"; do
  rm -f "$T/got"
  curl -sS -o "$T/got" -H "$(auth "$ADMIN")" "$URL/v1/evidence/$id/content"
  cmp -s "$T/got" "$T/f" || fail "content of $id differs"
done

t_stop_server
