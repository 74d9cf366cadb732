#!/usr/bin/env bash
# t3000: custos push uploads a file and a directory (recursively, sorted,
# skipping dot-names, an empty file included), prints "<id> <sha256> <path>"
# with the same SHA-256 as sha256sum, the server lists exactly those records,
# --chunk-size splits the PATCHes, and the state directory is private and
# keeps no upload in progress afterwards.
. "$(dirname "$0")/lib.sh"

t_start_server --log-level debug
TOK=$(t_token recorder --device cam-1)
ST="$T/state"
push() { "$CUSTOS" push --server "$URL" --token "$TOK" --state-dir "$ST" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --help documents every option.
help=$("$CUSTOS" push --help)
for o in --device --officer --case --recorded-at --state-dir --retries --max-rate --chunk-size \
         --watch --settle --delete-after-verify --server --token; do
  [[ "$help" == *"$o"* ]] || fail "push --help does not mention $o"
done

# One file, with all the metadata.
t_make_mp4 "$T/clip.mp4" 1
out=$(push --officer off-7 --case case-42 --recorded-at 2026-01-31T08:00:00Z "$T/clip.mp4")
assert_match '^[0-9a-f-]{36} [0-9a-f]{64} .*/clip\.mp4$' "$out" "push output line"
read -r id1 sha1 path1 <<<"$out"
assert_eq "$(sha "$T/clip.mp4")" "$sha1" "printed sha256 of clip.mp4"
assert_eq "$T/clip.mp4" "$path1" "printed path"
rec=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id1")
assert_eq "$sha1" "$(jq -r .sha256 <<<"$rec")" "server's sha256 of clip.mp4"
assert_eq "clip.mp4" "$(jq -r .filename <<<"$rec")" "filename metadata is the basename"
assert_eq "cam-1" "$(jq -r .device_id <<<"$rec")" "device from the recorder token"
assert_eq "off-7" "$(jq -r .officer_id <<<"$rec")" "officer metadata"
assert_eq "case-42" "$(jq -r .case_id <<<"$rec")" "case metadata"
assert_eq "2026-01-31T08:00:00Z" "$(jq -r .recorded_at <<<"$rec")" "recorded_at metadata"
assert_eq "true" "$(jq -r .client_sha256_verified <<<"$rec")" "the client declared its hash"

# A directory: nested, sorted bytewise by path, dot-names skipped.
D="$T/card"
mkdir -p "$D/b-sub" "$D/.hidden-dir"
t_noise 100000 "$D/a.bin"
t_noise 3500000 "$D/b-sub/c.bin"
: >"$D/b.empty"
echo "not me" >"$D/.dotfile"
echo "nor me" >"$D/.hidden-dir/x.bin"
out=$(push --chunk-size 1000000 "$D")
paths=$(cut -d' ' -f3 <<<"$out" | tr '\n' ' ')
assert_eq "$D/a.bin $D/b-sub/c.bin $D/b.empty " "$paths" "files pushed, in sorted order"
while read -r id s p; do
  assert_eq "$(sha "$p")" "$s" "printed sha256 of $p"
  got=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$id" | jq -r .sha256)
  assert_eq "$s" "$got" "server's record for $p"
done <<<"$out"
assert_eq "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
  "$(grep 'b.empty$' <<<"$out" | cut -d' ' -f2)" "the empty file"

# The server lists exactly the four uploads.
list=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence?limit=100")
assert_eq 4 "$(jq '.items | length' <<<"$list")" "evidence count on the server"
assert_eq "$(printf '%s\n' "$sha1" $(cut -d' ' -f2 <<<"$out") | sort | tr '\n' ' ')" \
  "$(jq -r '.items[].sha256' <<<"$list" | sort | tr '\n' ' ')" "the server lists what was pushed"

# 3.5 MB in 1 MB chunks is four PATCHes for c.bin.
cid=$(grep 'c.bin$' <<<"$out" | cut -d' ' -f1)
uid=$(curl -sS -H "Authorization: Bearer $ADMIN" "$URL/v1/evidence/$cid" | jq -r .upload_id)
n=$(grep -c "PATCH /v1/uploads/$uid -> 204" "$SERVER_LOG" || true)
assert_eq 4 "$n" "PATCH requests for a 3.5 MB file with --chunk-size 1000000"

# State directory: private, nothing in progress, one done-marker per file.
assert_eq 700 "$(stat -c %a "$ST")" "state directory mode"
assert_eq 0 "$(find "$ST/uploads" -name '*.json' | wc -l)" "remembered uploads after success"
assert_eq 4 "$(find "$ST/done" -name '*.json' | wc -l)" "done-markers"
for f in "$ST"/done/*.json; do
  assert_eq 600 "$(stat -c %a "$f")" "done-marker mode"
done
grep -q "\"evidence_id\":\"$id1\"" "$ST"/done/*.json || fail "no done-marker names $id1"

# A missing file fails the run (exit 1) but the others still go.
rc=0
out=$(push "$T/no-such-file" "$D/a.bin" 2>"$T/err") || rc=$?
assert_eq 1 "$rc" "exit status with a missing file"
assert_match 'no-such-file: cannot open' "$(cat "$T/err")" "error names the file"
assert_match "[0-9a-f]{64} $D/a.bin" "$out" "the good file was still pushed"

# Bad command lines are usage errors.
rc=0; push >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "push with no files"
rc=0; push --recorded-at yesterday "$D/a.bin" >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "push with a bad --recorded-at"
t_stop_server
