#!/usr/bin/env bash
# t5061: a reviewer's browser session (the cookie POST /v1/session gives)
# still reads after the server is stopped and started again, and after a
# kill -9; signing out ends it for good, restart or not, and leaves other
# sessions alone. The cookie's value is a secret: no file of the server's
# home holds it, only its hash. A made-up cookie is 401.
. "$(dirname "$0")/lib.sh"

t_start_server
RITA=$(t_token reviewer --user rita)
LEE=$(t_token legal --user lee)

sign_in() { # TOKEN JAR
  local st
  st=$(curl -sS -c "$2" -o "$T/b" -w '%{http_code}' -X POST -H "$(auth "$1")" "$URL/v1/session")
  assert_eq 201 "$st" "POST /v1/session"
}
who() { # JAR: the user GET /v1/session says, or the status
  local st
  st=$(curl -sS -b "$1" -o "$T/b" -w '%{http_code}' "$URL/v1/session")
  if [ "$st" = 200 ]; then jq -r .user "$T/b"; else echo "$st"; fi
}
cookie() { awk '$6 == "custos_session" {print $7}' "$1"; }

sign_in "$RITA" "$T/rita"
sign_in "$LEE" "$T/lee"
SID=$(cookie "$T/rita")
[ ${#SID} -ge 40 ] || fail "the session cookie is missing or short: '$SID'"
assert_eq rita "$(who "$T/rita")" "rita's session"
assert_eq lee "$(who "$T/lee")" "lee's session"

t_stop_server
if grep -r -a -q -F -- "$SID" "$HOME_DIR"; then
  fail "the session cookie's value is stored in $(grep -r -a -l -F -- "$SID" "$HOME_DIR" | head -3)"
fi
t_start_server
assert_eq rita "$(who "$T/rita")" "rita's session after a restart"

t_kill_server
t_start_server
assert_eq rita "$(who "$T/rita")" "rita's session after kill -9"

# A cookie nobody was given.
printf '127.0.0.1\tFALSE\t/\tFALSE\t0\tcustos_session\t%s\n' \
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" >"$T/forged"
assert_eq 401 "$(who "$T/forged")" "a made-up cookie"
assert_eq unauthorized "$(jq -r .error "$T/b")" "the error of a made-up cookie"

# Signing out ends that session only, and for good.
assert_eq 204 "$(curl -sS -b "$T/rita" -o /dev/null -w '%{http_code}' -X DELETE "$URL/v1/session")" \
  "DELETE /v1/session"
assert_eq 401 "$(who "$T/rita")" "rita's session after signing out"
assert_eq lee "$(who "$T/lee")" "lee's session after rita signed out"
t_stop_server
t_start_server
assert_eq 401 "$(who "$T/rita")" "rita's ended session after a restart"
assert_eq lee "$(who "$T/lee")" "lee's session after the second restart"
t_stop_server
echo ok
