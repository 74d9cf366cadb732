# Helpers of the small-disk tests (t2004, t2009), sourced after t_start_server
# with REC set to a recorder token for device cam-5 and the home on the
# tmpfs at $MNT (t_small_disk).
TUS=(-H "Tus-Resumable: 1.0.0" -H "Authorization: Bearer $REC")
S="$HOME_DIR/spool"
free_bytes() { df -B1 --output=avail "$MNT" | tail -n 1 | tr -d ' '; }
# POST: prints "STATUS ID"; the body goes to $T/b.post.
create() {
  local st loc
  st=$(curl -sS -o "$T/b.post" -D "$T/h.post" -w '%{http_code}' -X POST "${TUS[@]}" -H "Upload-Length: $1" \
    -H "Upload-Metadata: filename $(b64 "${2:-f.bin}"),device_id $(b64 cam-5)" "$URL/v1/uploads")
  loc=$(t_header Location "$T/h.post")
  echo "$st ${loc##*/}"
}
# PATCH of file $2 at offset $3 to upload $1, more curl args after; prints
# the status ("000" if the connection broke); headers in $T/h.$1, body in $T/b.$1.
patch() {
  local id=$1 file=$2 off=$3
  shift 3
  curl -sS -o "$T/b.$id" -D "$T/h.$id" -w '%{http_code}' -X PATCH "${TUS[@]}" "${OCT[@]}" -H "Expect:" \
    -H "Upload-Offset: $off" "$@" "$URL/v1/uploads/$id" -T "$file" 2>>"$T/curl.err" || true
}
head_offset() {
  curl -sS -o /dev/null -D "$T/h.head" -I "${TUS[@]}" "$URL/v1/uploads/$1" >/dev/null
  t_header Upload-Offset "$T/h.head"
}
spool_size() { stat -c %s "$S/$1.part"; }
assert_507_json() { # $1 status, $2 body file, $3 what
  assert_eq 507 "$1" "$3"
  assert_eq insufficient_storage "$(jq -r .error "$2")" "$3: JSON error"
  assert_match '.' "$(jq -r .detail "$2")" "$3: JSON detail"
}
# A small upload still works: the server is up and can commit.
small_upload_works() {
  local r id
  t_noise 100000 "$T/small.bin"
  r=$(create 100000 small.bin)
  assert_eq 201 "${r%% *}" "$1: POST of a small upload"
  id=${r#* }
  assert_eq 204 "$(patch "$id" "$T/small.bin" 0)" "$1: PATCH of a small upload"
  assert_eq "$(sha256sum "$T/small.bin" | cut -d' ' -f1)" "$(t_header Custos-SHA256 "$T/h.$id")" "$1: small upload hash"
  assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/healthz")" "$1: /healthz"
}
