#!/usr/bin/env bash
# t5060: the reviewer page, in Debian's Chromium driven headless by
# playwright-core: a reviewer signs in with her token, sees only the cases
# assigned to her, opens one, sees its recordings with their posters, plays
# the access copy, reads its chain of custody, cuts a clip and plays it.
# Her browser session (a cookie) can only read: a change with it alone is
# 401. Every view she made is an accessed event with her name.
. "$(dirname "$0")/lib.sh"
command -v ffmpeg >/dev/null || fail "ffmpeg is not installed"
[ -x /usr/bin/chromium ] || fail "chromium is not installed (scripts/deps.sh --test installs it)"
[ -f "$CUSTOS_JS/node_modules/playwright-core/package.json" ] || fail "playwright-core is not installed (scripts/test-js-deps.sh)"
t_start_server
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440" \
  -t 4 -c:v libx264 -preset ultrafast -g 25 -c:a aac -shortest "$T/rec.mp4"
E=$(t_push "$T/rec.mp4" cam-60)
t_rend_settle "$E"
RITA=$(t_token reviewer --user rita)
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN"
C=$("$CUSTOS" case create "Rita's <b>case</b>")
S=$("$CUSTOS" case create "Secret case")
"$CUSTOS" case link "$C" "$E" >/dev/null
"$CUSTOS" case link "$S" "$E" >/dev/null
"$CUSTOS" case assign "$C" rita >/dev/null

out=$(node "$CUSTOS_JS/review-page.cjs" "$URL" "$RITA")
echo "$out" >"$T/page.json"
assert_eq '[]' "$(jq -c .errors <<<"$out")" "no errors in the page"
assert_eq "rita (reviewer)" "$(jq -r .who <<<"$out")" "signed in as rita"
assert_eq "[\"Rita's <b>case</b>\"]" "$(jq -c .cases <<<"$out")" "only her case, its title as text"
assert_eq "[\"$E\"]" "$(jq -c .items <<<"$out")" "the case's recording"
assert_eq '[640]' "$(jq -c .posters <<<"$out")" "its poster loaded"
assert_eq true "$(jq -r .video.played <<<"$out")" "the recording played: $(jq -c .video <<<"$out")"
assert_eq access "$(jq -r .video.rendition <<<"$out")" "it played the access copy"
jq -e '.custody | index("ingested") and index("linked")' <<<"$out" >/dev/null || fail "the chain of custody is shown: $(jq -c .custody <<<"$out")"
assert_eq true "$(jq -r .clip.played <<<"$out")" "the clip played: $(jq -c .clip <<<"$out")"
assert_eq "clip:copy:1000:2000" "$(jq -r .clip.rendition <<<"$out")" "the clip is the copy-mode rendition"

# The views are hers, in the ledger.
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$E/events"
acc=$(jq -c '[.events[].event | select(.type == "accessed" and .actor.user == "rita") | .rendition] | unique' <<<"$BODY")
assert_eq '["access","clip:copy:1000:2000","poster"]' "$acc" "rita's accesses"

# A session cookie alone cannot change anything, and it reads only what she may.
curl -sS -c "$T/jar" -o /dev/null -X POST -H "$(auth "$RITA")" "$URL/v1/session"
st=$(curl -sS -b "$T/jar" -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
  -d '{"category":"permanent"}' "$URL/v1/evidence/$E/retention")
assert_eq 401 "$st" "a change with the cookie alone"
st=$(curl -sS -b "$T/jar" -o /dev/null -w '%{http_code}' "$URL/v1/cases/$S")
assert_eq 403 "$st" "the cookie reads only her cases"
st=$(curl -sS -b "$T/jar" -o /dev/null -w '%{http_code}' "$URL/v1/evidence/$E/content?rendition=poster")
assert_eq 200 "$st" "the cookie reads her item"
curl -sS -b "$T/jar" -o /dev/null -X DELETE "$URL/v1/session"
st=$(curl -sS -b "$T/jar" -o /dev/null -w '%{http_code}' "$URL/v1/cases")
assert_eq 401 "$st" "signed out"
echo ok
