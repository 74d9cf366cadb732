#!/usr/bin/env bash
# t1250: the access copy of a real recording (a portrait phone clip at 1080p,
# rotated, with sound) plays in Chromium: Debian's browser, driven headless by
# playwright-core, loads it, plays past half a second and sees the picture the
# right way up at most 1280 pixels on its longest side.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || fail "ffmpeg is not installed"
[ -x /usr/bin/chromium ] || fail "chromium is not installed (scripts/deps.sh --test installs it)"
[ -f "$CUSTOS_JS/node_modules/playwright-core/package.json" ] || fail "playwright-core is not installed (scripts/test-js-deps.sh)"

ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
  -f lavfi -i "sine=frequency=440" -t 2 -c:v libx264 -preset ultrafast -c:a aac \
  -shortest -y "$T/landscape.mp4"
# ffmpeg 5.1 writes the display matrix from a "rotate" tag only when remuxing.
ffmpeg -hide_banner -loglevel error -i "$T/landscape.mp4" -c copy -metadata:s:v:0 rotate=90 -y "$T/phone.mp4"
t_start_server
REC=$(t_token recorder --device cam-1250)
size=$(stat -c %s "$T/phone.mp4")
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Length: $size" \
  -H "Upload-Metadata: device_id $(b64 cam-1250),filename $(b64 phone.mp4)" \
  --data-binary "@$T/phone.mp4" "$URL/v1/uploads"
assert_eq 201 "$ST" "upload of the phone clip"
ev=$(hdr Custos-Evidence-Id)

state=
for _ in $(seq 1 600); do
  call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev"
  state=$(jq -r '.renditions.access.state // "absent"' <<<"$BODY")
  case $state in done|failed|not_applicable) break ;; esac
  sleep 0.1
done
assert_eq done "$state" "the access copy's state ($(jq -c .renditions.access <<<"$BODY"))"
want=$(jq -r .renditions.access.sha256 <<<"$BODY")

call -o "$T/access.mp4" -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev/content?rendition=access"
assert_eq 200 "$ST" "GET the access copy"
assert_eq "$want" "$(sha256sum "$T/access.mp4" | cut -c1-64)" \
  "the access copy's bytes against its record"

out=$(cd "$CUSTOS_JS" && node play-video.cjs "$T/access.mp4") || fail "Chromium did not play the access copy: $out"
assert_eq true "$(jq -r .played <<<"$out")" "played ($out)"
# Stood up as filmed: the 1920x1080 picture turned a quarter, then scaled.
w=$(jq -r .width <<<"$out") h=$(jq -r .height <<<"$out")
[ "$h" -gt "$w" ] || fail "the browser shows ${w}x${h}: the rotation was lost"
[ "$h" -le 1280 ] || fail "the browser shows ${w}x${h}: longer than 1280"
awk -v d="$(jq -r .duration <<<"$out")" 'BEGIN { exit !(d > 1.8 && d < 2.2) }' ||
  fail "the browser says the copy lasts $(jq -r .duration <<<"$out") s, not 2 s"
echo ok
