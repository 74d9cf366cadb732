#!/usr/bin/env bash
# t1000: a server started in an empty home creates its layout and an admin
# token (0600), answers /healthz, and stops cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"

t_start_server
for d in index spool objects keys exports quarantine; do
  [ -d "$HOME_DIR/$d" ] || fail "layout: $d missing"
done
assert_eq 600 "$(stat -c %a "$HOME_DIR/admin.token")" "admin.token mode"
assert_eq 700 "$(stat -c %a "$HOME_DIR/keys")" "keys directory mode"
out=$(t_curl "$URL/healthz")
assert_eq 200 "$(t_status "$out")" "healthz status"
assert_match '"status":"ok"' "$(t_body "$out")" "healthz body"
out=$(t_curl "$URL/metrics")
assert_eq 401 "$(t_status "$out")" "metrics without a token"
out=$(t_curl -H "Authorization: Bearer $ADMIN" "$URL/metrics")
assert_eq 200 "$(t_status "$out")" "metrics status"
assert_match 'custos_uploads_started_total 0' "$(t_body "$out")" "metrics has upload counter"
assert_match 'custos_http_request_duration_seconds_bucket\{le="\+Inf"\}' "$(t_body "$out")" "metrics histogram"
first=$(cat "$HOME_DIR/admin.token")
t_stop_server
t_start_server
assert_eq "$first" "$(cat "$HOME_DIR/admin.token")" "admin token is written once, not on every start"
t_stop_server
