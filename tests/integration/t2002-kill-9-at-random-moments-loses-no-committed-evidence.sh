#!/usr/bin/env bash
# t2002: killing the server with SIGKILL at random moments while clients
# upload many small files loses no upload that was acknowledged as evidence,
# leaves no partial or misnamed object and no temporary file, never makes two
# evidence records of one upload, and every interrupted upload can be
# finished with HEAD + PATCH.
#
# Each round uploads up to 30 files of 100 KB (POST, then two PATCHes of
# 50 KB, some of them sent slowly so they are in flight) from two parallel
# clients, and the server is killed after a random delay; the last phase
# resumes everything that did not finish. Set T2002_SEED to replay a run.
. "$(dirname "$0")/lib.sh"

ROUNDS=8
PER_ROUND=30
FSIZE=102400
HALF=$((FSIZE / 2))
SEED=${T2002_SEED:-$$}
RANDOM=$SEED
echo "seed $SEED"

t_start_server
REC=$(t_token recorder --device cam-3)
[ -n "$REC" ] || fail "could not create a recorder token"
TUS=(-H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $REC")
mkdir -p "$T/f" "$T/st"
for i in $(seq 1 $((ROUNDS * PER_ROUND))); do
  t_noise "$FSIZE" "$T/f/$i"
  sha256sum "$T/f/$i" | cut -d' ' -f1 >"$T/f/$i.sha"
done

# Records a completed upload of file $1 from response headers $2.
record_done() {
  local ev sha
  ev=$(t_header Custos-Evidence-Id "$2")
  sha=$(t_header Custos-SHA256 "$2")
  [ -n "$ev" ] || return 1
  echo "$ev $sha" >"$T/st/$1.done"
}

# PATCH of bytes [$2, $3) of file $1 to upload $4; extra curl args follow.
# Prints the status code ("000" when the connection failed).
patch_part() {
  local i=$1 from=$2 to=$3 id=$4
  shift 4
  tail -c +$((from + 1)) "$T/f/$i" | head -c $((to - from)) >"$T/part.$i"
  curl -sS -o /dev/null -D "$T/h.$i" -w '%{http_code}' -X PATCH "${TUS[@]}" -H "Expect:" \
    -H "Upload-Offset: $from" -H "Content-Type: application/offset+octet-stream" \
    --data-binary @"$T/part.$i" "$@" "$URL/v1/uploads/$id" 2>/dev/null || true
}

# One client: uploads files $1..$2 until the server goes away.
client() {
  local i st id
  for i in $(seq "$1" "$2"); do
    st=$(curl -sS -o /dev/null -D "$T/h.$i" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $FSIZE" \
      -H "Upload-Metadata: filename $(b64 "f$i.bin"),device_id $(b64 cam-3)" "$URL/v1/uploads" 2>/dev/null) || return 0
    [ "$st" = 201 ] || { echo "POST $i -> $st" >>"$T/errors"; return 0; }
    id=$(t_header Location "$T/h.$i")
    id=${id##*/}
    echo "$id" >"$T/st/$i.id"
    st=$(patch_part "$i" 0 "$HALF" "$id")
    [ "$st" = 204 ] || { [ "$st" = 000 ] || echo "PATCH1 $i -> $st" >>"$T/errors"; return 0; }
    if [ $((i % 4)) = 0 ]; then
      st=$(patch_part "$i" "$HALF" "$FSIZE" "$id" --limit-rate 200K)
    else
      st=$(patch_part "$i" "$HALF" "$FSIZE" "$id")
    fi
    [ "$st" = 204 ] || { [ "$st" = 000 ] || echo "PATCH2 $i -> $st" >>"$T/errors"; return 0; }
    record_done "$i" "$T/h.$i" || echo "PATCH2 $i: 204 without an evidence id" >>"$T/errors"
  done
}

for round in $(seq 1 "$ROUNDS"); do
  first=$(((round - 1) * PER_ROUND + 1))
  mid=$((first + PER_ROUND / 2))
  last=$((first + PER_ROUND - 1))
  client "$first" $((mid - 1)) &
  c1=$!
  client "$mid" "$last" &
  c2=$!
  delay=$((300 + RANDOM % 1700))
  sleep "$(printf '0.%03d' "$delay")"
  t_kill_server
  wait "$c1" "$c2" || true
  n=$(ls "$T/st" | grep -c '\.done$' || true)
  echo "round $round: killed after $delay ms; $n upload(s) acknowledged so far"
  [ ! -s "$T/errors" ] || fail "unexpected responses: $(cat "$T/errors")"
  t_start_server
done

# Every interrupted upload can be finished.
resumed=0 found_complete=0
for f in "$T"/st/*.id; do
  i=$(basename "$f" .id)
  [ -e "$T/st/$i.done" ] && continue
  id=$(cat "$f")
  st=$(curl -sS -o /dev/null -D "$T/h.$i" -w '%{http_code}' -I "${TUS[@]}" "$URL/v1/uploads/$id")
  assert_eq 200 "$st" "HEAD of interrupted upload $i ($id)"
  off=$(t_header Upload-Offset "$T/h.$i")
  assert_eq "$FSIZE" "$(t_header Upload-Length "$T/h.$i")" "Upload-Length of upload $i"
  if [ "$off" = "$FSIZE" ]; then
    # Its last PATCH was committed but the answer was lost in the crash.
    record_done "$i" "$T/h.$i" || fail "upload $i: HEAD says complete but names no evidence"
    found_complete=$((found_complete + 1))
    continue
  fi
  [ "$off" = 0 ] || [ "$off" = "$HALF" ] || fail "upload $i: offset $off is not a PATCH boundary"
  sz=$(stat -c %s "$HOME_DIR/spool/$id.part" 2>/dev/null) || fail "upload $i: its spool file is missing"
  [ "$sz" -ge "$off" ] || fail "upload $i: spool file ($sz bytes) is shorter than its offset $off"
  st=$(patch_part "$i" "$off" "$FSIZE" "$id")
  assert_eq 204 "$st" "PATCH resuming upload $i from $off"
  record_done "$i" "$T/h.$i" || fail "upload $i: resumed PATCH named no evidence"
  resumed=$((resumed + 1))
done
echo "resumed $resumed interrupted upload(s); $found_complete more were complete though their answer was lost"

# Every acknowledged upload is evidence with the right hash and object.
done_n=0
for f in "$T"/st/*.done; do
  i=$(basename "$f" .done)
  read -r ev sha <"$f"
  want=$(cat "$T/f/$i.sha")
  assert_eq "$want" "$sha" "Custos-SHA256 of upload $i"
  out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$ev")
  assert_eq 200 "$(t_status "$out")" "evidence $ev of upload $i"
  assert_eq "$want" "$(t_body "$out" | jq -r .sha256)" "sha256 of evidence $ev"
  assert_eq "$FSIZE" "$(t_body "$out" | jq -r .size)" "size of evidence $ev"
  obj="$HOME_DIR/objects/sha256/${want:0:2}/${want:2:2}/$want"
  [ -f "$obj" ] || fail "object of upload $i is missing"
  done_n=$((done_n + 1))
done
ids=$(ls "$T"/st/*.id | wc -l)
echo "$ids upload(s) created, $done_n acknowledged as evidence"
[ "$done_n" -ge 10 ] || fail "only $done_n uploads completed: the test did not exercise much"

# One evidence record per upload: none lost, none doubled by a recovery.
out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence?device=cam-3&limit=1000")
assert_eq 200 "$(t_status "$out")" "evidence listing"
t_body "$out" | jq -r '.items[].sha256' | sort >"$T/listed"
assert_eq 0 "$(sort "$T/listed" | uniq -d | wc -l)" "evidence records with a duplicated sha256"
cat "$T"/st/*.done | cut -d' ' -f2 | sort >"$T/acked"
assert_eq "$(cat "$T/acked")" "$(cat "$T/listed")" "evidence listed vs uploads acknowledged"
assert_eq null "$(t_body "$out" | jq -r .next_cursor)" "evidence listing fits one page"

# The store holds whole objects only, each named by its hash, 0444, and
# each one is evidence or a rendition of evidence (random bytes now and then
# pass for media and get renditions). Renditions are listed after the store
# is, so that one committed just before is in the list.
find "$HOME_DIR/objects" -type f | sort >"$T/objects"
: >"$T/rendition-shas"
for id in $(t_body "$out" | jq -r '.items[].id'); do
  r=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id")
  t_body "$r" | jq -r '(.renditions // {})[] | select(.state == "done") | .sha256' >>"$T/rendition-shas"
done
while read -r obj; do
  name=$(basename "$obj")
  assert_eq "$name" "$(sha256sum "$obj" | cut -d' ' -f1)" "object content vs its name"
  assert_eq 444 "$(stat -c %a "$obj")" "mode of object $name"
done <"$T/objects"
sed 's#.*/##' "$T/objects" | sort >"$T/objnames"
assert_eq "" "$(comm -23 "$T/listed" "$T/objnames")" "evidence records whose object is missing"
assert_eq "" "$(sort -u "$T/listed" "$T/rendition-shas" | comm -13 - "$T/objnames")" \
  "objects in the store that are neither evidence nor a rendition of it"
left=$(find "$HOME_DIR" -path "$HOME_DIR/index" -prune -o \( -name '*.tmp' -o -name '.*tmp*' \) -print)
assert_eq "" "$left" "temporary files left behind"

# What is left in the spool belongs to open uploads (POSTs whose answer
# the crash swallowed) and nothing else.
for p in "$HOME_DIR"/spool/*; do
  [ -e "$p" ] || continue
  id=$(basename "$p" .part)
  out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/uploads/$id")
  assert_eq 200 "$(t_status "$out")" "status of the upload owning spool file $id"
  assert_eq active "$(t_body "$out" | jq -r .state)" "state of the upload owning spool file $id"
done
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
