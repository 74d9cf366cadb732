#!/usr/bin/env bash
# t2006: a SIGKILL at each step of committing a finished upload (before the
# upload is marked committing, before the object is linked, right after it
# is linked, before the evidence record is written, after it is written but
# before the answer) never shows a partial object, and after the restart the
# upload is either resumable from its old offset or evidence exactly once,
# with its object whole and 0444.
#
# gdb attaches to the running server and stops it at the step (a breakpoint
# in the RelWithDebInfo/ASan binary); the test looks at the disk while it is
# frozen there, then kills it with SIGKILL. Skipped (77) without gdb or
# ptrace.
. "$(dirname "$0")/lib.sh"

# The server log since the last log_mark (earlier starts stay in the file,
# so sanitizer reports from killed runs are not lost).
log_mark() { LOG_MARK=$(wc -l <"$SERVER_LOG"); }
log_since_mark() { tail -n +$((LOG_MARK + 1)) "$SERVER_LOG"; }

command -v gdb >/dev/null || { echo "SKIP: gdb is not installed" >&2; exit 77; }
GDB_PID=""
# A gdb left waiting would keep the killed server from being reaped.
t_on_exit 'touch "$T/go"; [ -z "$GDB_PID" ] || kill -KILL "$GDB_PID" 2>/dev/null'
FSIZE=300000

t_start_server
gdb -q -batch -p "$SERVER_PID" -ex 'info address store_commit' >"$T/gdb.probe" 2>&1 || true
if ! grep -q 'is a function' "$T/gdb.probe"; then
  echo "SKIP: gdb cannot attach to the server here: $(tail -n 3 "$T/gdb.probe")" >&2
  exit 77
fi
REC=$(t_token recorder --device cam-7)
[ -n "$REC" ] || fail "could not create a recorder token"
TUS=(-H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $REC")

create() { # file -> upload id
  local st loc
  st=$(curl -sS -o /dev/null -D "$T/h.post" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $FSIZE" \
    -H "Upload-Metadata: filename $(b64 "$(basename "$1")"),device_id $(b64 cam-7)" "$URL/v1/uploads")
  assert_eq 201 "$st" "POST for $1"
  loc=$(t_header Location "$T/h.post")
  echo "${loc##*/}"
}
objpath() { echo "$HOME_DIR/objects/sha256/${1:0:2}/${1:2:2}/$1"; }
# HEAD: prints "STATUS OFFSET EVIDENCE-ID".
head_upload() {
  local st
  st=$(curl -sS -o /dev/null -D "$T/h.head" -w '%{http_code}' -I "${TUS[@]}" "$URL/v1/uploads/$1")
  echo "$st $(t_header Upload-Offset "$T/h.head") $(t_header Custos-Evidence-Id "$T/h.head")"
}

# Runs a PATCH of the whole of file $2 to upload $1 with the server stopped
# by gdb at the step described by the gdb commands after $2; the disk can be
# looked at by the caller once this returns; then call kill_frozen.
patch_until_frozen() {
  local id=$1 file=$2
  shift 2
  rm -f "$T/armed" "$T/frozen" "$T/go"
  local cmds=(-ex 'set pagination off' -ex 'set confirm off') armed=no c
  for c in "$@"; do
    if [ "$c" = continue ] && [ $armed = no ]; then
      cmds+=(-ex "shell touch '$T/armed'")
      armed=yes
    fi
    cmds+=(-ex "$c")
  done
  cmds+=(-ex "shell touch '$T/frozen'" -ex "shell while [ -d '$T' ] && [ ! -e '$T/go' ]; do sleep 0.05; done")
  gdb -q -batch -p "$SERVER_PID" "${cmds[@]}" >"$T/gdb.out" 2>&1 &
  GDB_PID=$!
  for _ in $(seq 1 300); do
    [ -e "$T/armed" ] && break
    sleep 0.05
  done
  [ -e "$T/armed" ] || fail "gdb did not attach: $(tail -n 5 "$T/gdb.out")"
  curl -sS -o /dev/null -w '%{http_code}' -X PATCH "${TUS[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
    --data-binary @"$file" "$URL/v1/uploads/$id" >"$T/patch.st" 2>/dev/null &
  CURL_PID=$!
  for _ in $(seq 1 300); do
    [ -e "$T/frozen" ] && return 0
    kill -0 "$GDB_PID" 2>/dev/null || break
    sleep 0.05
  done
  fail "the server never reached the step: $(tail -n 8 "$T/gdb.out")"
}
kill_frozen() {
  kill -KILL "$SERVER_PID"
  touch "$T/go" # gdb must reap the traced server before the shell can
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  wait "$GDB_PID" 2>/dev/null || true
  wait "$CURL_PID" 2>/dev/null || true
  assert_eq 000 "$(cat "$T/patch.st")" "the PATCH got no answer from the killed server"
}
# After the restart: the upload is evidence exactly once, object whole.
check_committed() {
  local id=$1 file=$2 what=$3 sha r ev out
  sha=$(sha256sum "$file" | cut -d' ' -f1)
  r=$(head_upload "$id")
  read -r st off ev <<<"$r"
  assert_eq "200 $FSIZE" "$st $off" "$what: HEAD after the restart"
  assert_match '^[0-9a-f-]{36}$' "$ev" "$what: Custos-Evidence-Id on HEAD after the restart"
  out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/uploads/$id")
  assert_eq completed "$(t_body "$out" | jq -r .state)" "$what: upload state"
  assert_eq "$ev" "$(t_body "$out" | jq -r .evidence_id)" "$what: evidence id of the upload"
  out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence?sha256=$sha")
  assert_eq 200 "$(t_status "$out")" "$what: evidence by sha256"
  assert_eq "$ev" "$(t_body "$out" | jq -r '[.items[].id] | join(" ")')" "$what: one evidence record for the bytes"
  assert_eq "$id" "$(t_body "$out" | jq -r '.items[0].upload_id')" "$what: evidence names its upload"
  assert_eq "$sha" "$(sha256sum "$(objpath "$sha")" | cut -d' ' -f1)" "$what: object content"
  assert_eq 444 "$(stat -c %a "$(objpath "$sha")")" "$what: object mode"
  [ ! -e "$HOME_DIR/spool/$id.part" ] || fail "$what: spool file left after the commit was finished"
  # The client that never got its answer resumes: HEAD says done, and a
  # repeat of the last PATCH is refused without harm.
  st=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH "${TUS[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
    --data-binary @"$file" "$URL/v1/uploads/$id")
  assert_eq 409 "$st" "$what: PATCH repeated on the completed upload"
}
nfiles=0
# A new random file in $f, its upload in $id, its hash in $sha.
new_upload() {
  nfiles=$((nfiles + 1))
  f="$T/f$nfiles.bin"
  # Text, unique per file: random bytes now and then pass for media and
  # get renditions, which are objects too, and this test counts objects.
  { yes "custos commit test $nfiles $RANDOM$RANDOM" || true; } | head -c "$FSIZE" >"$f"
  sha=$(sha256sum "$f" | cut -d' ' -f1)
  id=$(create "$f")
}

# ---- 1: all bytes synced, the upload not yet marked committing ------------
new_upload
patch_until_frozen "$id" "$f" 'break spool_digest' 'continue'
[ ! -e "$(objpath "$sha")" ] || fail "step 1: an object exists before the commit started"
kill_frozen
t_start_server
assert_eq "200 0 " "$(head_upload "$id")" "step 1: HEAD after the restart (offset never recorded)"
st=$(curl -sS -o /dev/null -D "$T/h.p" -w '%{http_code}' -X PATCH "${TUS[@]}" "${OCT[@]}" -H "Upload-Offset: 0" \
  --data-binary @"$f" "$URL/v1/uploads/$id")
assert_eq 204 "$st" "step 1: PATCH sent again"
assert_eq "$sha" "$(t_header Custos-SHA256 "$T/h.p")" "step 1: SHA-256 after resending"
check_committed "$id" "$f" "step 1"

# ---- 2: marked committing, object not yet linked --------------------------
new_upload
patch_until_frozen "$id" "$f" 'break store_commit' 'continue'
[ ! -e "$(objpath "$sha")" ] || fail "step 2: the object exists before it was linked"
kill_frozen
log_mark
t_start_server
assert_match 'finished 1 upload commit' "$(log_since_mark)" "step 2: start-up finishes the interrupted commit"
check_committed "$id" "$f" "step 2"

# ---- 3: object linked into the store, directory not yet synced ------------
new_upload
patch_until_frozen "$id" "$f" 'break store_commit' 'continue' 'break link' 'continue' 'finish'
[ -e "$(objpath "$sha")" ] || fail "step 3: gdb did not stop after link(): $(tail -n 5 "$T/gdb.out")"
assert_eq "$sha" "$(sha256sum "$(objpath "$sha")" | cut -d' ' -f1)" "step 3: the object, as soon as it is visible, is whole"
assert_eq 444 "$(stat -c %a "$(objpath "$sha")")" "step 3: the object is read-only as soon as it is visible"
kill_frozen
t_start_server
check_committed "$id" "$f" "step 3"

# ---- 4: object stored, evidence record not yet written --------------------
new_upload
patch_until_frozen "$id" "$f" 'break idx_batch_add_evidence' 'continue'
assert_eq "$sha" "$(sha256sum "$(objpath "$sha")" | cut -d' ' -f1)" "step 4: object content"
kill_frozen
t_start_server
check_committed "$id" "$f" "step 4"

# ---- 5: evidence written, the answer not yet sent -------------------------
new_upload
patch_until_frozen "$id" "$f" 'break job_queue_kick' 'continue'
kill_frozen
log_mark
t_start_server
if log_since_mark | grep -q 'finished [0-9]* upload commit'; then fail "step 5: a finished commit was done again"; fi
check_committed "$id" "$f" "step 5"

# ---- everything together --------------------------------------------------
out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence?device=cam-7")
assert_eq "$nfiles" "$(t_body "$out" | jq '.items | length')" "evidence records after $nfiles interrupted commits"
while read -r obj; do
  assert_eq "$(basename "$obj")" "$(sha256sum "$obj" | cut -d' ' -f1)" "object content vs its name"
done < <(find "$HOME_DIR/objects" -type f)
assert_eq "$nfiles" "$(find "$HOME_DIR/objects" -type f | wc -l)" "objects in the store"
assert_eq "" "$(ls -A "$HOME_DIR/spool")" "spool after every commit was finished"
t_stop_server
# No sanitizer report from any of the servers this test ran (ASan builds).
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
  fail "sanitizer report in the server log: $(grep -m 3 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG")"
fi
