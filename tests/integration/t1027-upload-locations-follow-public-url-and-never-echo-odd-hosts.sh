#!/usr/bin/env bash
# t1027: the Location of a new upload is built from --public-url when the
# server sits behind a proxy, from a plain Host header otherwise, and is
# relative when the Host header is anything but a host name and port.
. "$(dirname "$0")/lib.sh"

create() { # extra curl args...; prints the Location header
  curl -sS -o /dev/null -D "$T/h" -X POST -H "Authorization: Bearer $ADMIN" -H 'Tus-Resumable: 1.0.0' \
    -H 'Upload-Length: 3' -H "Upload-Metadata: device_id $(b64 cam1)" "$@" "$URL/v1/uploads"
  t_header Location "$T/h"
}

t_start_server
loc=$(create)
assert_match "^http://127\.0\.0\.1:$PORT/v1/uploads/[0-9a-f-]{36}$" "$loc" "Location from the Host header"
loc=$(create -H 'Host: evil.example?x=')
assert_match '^/v1/uploads/[0-9a-f-]{36}$' "$loc" "an odd Host gives a relative Location"
loc=$(create -H 'Host: a@b')
assert_match '^/v1/uploads/[0-9a-f-]{36}$' "$loc" "a Host with userinfo gives a relative Location"
t_stop_server

t_start_server --public-url https://archive.example/custos/
loc=$(create)
assert_match '^https://archive\.example/custos/v1/uploads/[0-9a-f-]{36}$' "$loc" "Location under --public-url"
# The path part works against the server itself.
id=${loc##*/}
st=$(curl -sS -o /dev/null -w '%{http_code}' -I -H "Authorization: Bearer $ADMIN" -H 'Tus-Resumable: 1.0.0' "$URL/v1/uploads/$id")
assert_eq 200 "$st" "HEAD of the upload named by the Location"
t_stop_server

out=$("$CUSTOS" serve --home "$T/other" --public-url ftp://x 2>&1) && fail "serve accepted an ftp public URL"
assert_match 'must start with http' "$out" "bad --public-url message"
