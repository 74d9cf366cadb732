#!/usr/bin/env bash
# t1002: an upload sent in several PATCHes of awkward sizes (1 byte, a 4 KiB
# page less one, a spool buffer and a bit, the rest) resumes each time from
# the offset HEAD reports, and the stored object is the file, byte for byte;
# the offset survives a server restart between chunks.
. "$(dirname "$0")/lib.sh"

# slice FILE FROM COUNT > OUT: COUNT bytes of FILE starting at byte FROM.
slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none; }

t_start_server
REC=$(t_token recorder --device cam-0002)

t_noise 3500000 "$T/f"
size=$(stat -c %s "$T/f")
want=$(sha256sum "$T/f" | cut -d' ' -f1)
call -X POST "${TUS[@]}" -H "$(auth "$REC")" -H "Upload-Length: $size" \
  -H "Upload-Metadata: device_id $(b64 cam-0002),filename $(b64 f.bin)" "$URL/v1/uploads"
assert_eq 201 "$ST" "POST status"
up=$(hdr Location)
id=${up##*/}

off=0
n=0
for len in 1 4095 1048577 1000000 $((size - 1 - 4095 - 1048577 - 1000000)); do
  n=$((n + 1))
  # Where to resume? Ask, as a client would.
  call -I "${TUS[@]}" -H "$(auth "$REC")" "$up"
  assert_eq 200 "$ST" "HEAD before chunk $n"
  assert_eq "$off" "$(hdr Upload-Offset)" "HEAD offset before chunk $n"
  assert_eq "$size" "$(hdr Upload-Length)" "HEAD length before chunk $n"
  assert_eq no-store "$(hdr Cache-Control)" "HEAD Cache-Control before chunk $n"
  slice "$T/f" "$off" "$len" >"$T/chunk"
  call -X PATCH "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Offset: $(hdr Upload-Offset)" \
    --data-binary "@$T/chunk" "$up"
  assert_eq 204 "$ST" "PATCH $n status"
  off=$((off + len))
  assert_eq "$off" "$(hdr Upload-Offset)" "PATCH $n Upload-Offset"
  if [ "$off" -lt "$size" ]; then
    assert_eq "" "$(hdr Custos-Evidence-Id)" "no evidence id before the last chunk"
    assert_eq "$off" "$(stat -c %s "$HOME_DIR/spool/$id.part")" "spool size after chunk $n"
  fi
  if [ "$n" = 3 ]; then
    # A restart between chunks loses nothing that was acknowledged.
    t_stop_server
    t_start_server
    up="$URL/v1/uploads/$id"
  fi
done
assert_eq "$want" "$(hdr Custos-SHA256)" "Custos-SHA256 after the last chunk"
ev=$(hdr Custos-Evidence-Id)
[ -n "$ev" ] || fail "the last PATCH did not name the evidence"
obj="$HOME_DIR/objects/sha256/${want:0:2}/${want:2:2}/$want"
cmp -s "$obj" "$T/f" || fail "stored object differs from the file"

call -H "$(auth "$REC")" -H 'Accept: application/json' "$up"
assert_eq completed "$(jq -r .state <<<"$BODY")" "upload state"
assert_eq "$ev" "$(jq -r .evidence_id <<<"$BODY")" "upload evidence_id"

t_stop_server
