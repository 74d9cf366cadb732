#!/usr/bin/env bash
# t5051: an exact clip takes a while and is made off the event loop: other
# requests are answered meanwhile; SIGTERM while it is being made gives it
# up at once, the server exits 0 promptly and the client gets an answer
# (503) or a closed connection, never a half clip; kill -9 while it is
# being made leaves no record and no partial file (swept at start); asked
# again after a restart, the clip is made and served whole.
. "$(dirname "$0")/lib.sh"
command -v ffmpeg >/dev/null || exit 77
t_start_server
ffmpeg -loglevel error -f lavfi -i testsrc2=s=1280x720:r=30:d=40 -c:v libx264 -preset ultrafast -g 60 "$T/rec.mp4"
E=$(t_push "$T/rec.mp4" cam-51)
A=(-H "$(auth "$ADMIN")")
Q="clip?start=0.5&end=39&mode=exact"
# The clip's partial output (rendition jobs have theirs there too).
work() { find "$HOME_DIR/work" -type f -name '*.clip.mp4' | wc -l; }

# While it is being made, the server answers others at once.
curl -sS -o "$T/slow.mp4" -w '%{http_code}' "${A[@]}" "$URL/v1/evidence/$E/$Q" >"$T/slow.st" &
slow=$!
for i in $(seq 1 100); do [ "$(work)" -gt 0 ] && break; sleep 0.05; done
[ "$(work)" -gt 0 ] || fail "the clip did not start"
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8 9 10; do
  st=$(curl -sS -o /dev/null -w '%{http_code}' "$URL/healthz")
  assert_eq 200 "$st" "healthz while a clip is made"
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 3000 ] || fail "ten health checks took $ms ms while a clip was being made"
kill -0 "$slow" 2>/dev/null || fail "the clip finished too soon to test an interruption"

# SIGTERM: it gives up, the server exits 0 within seconds.
t0=$(date +%s)
t_stop_server
[ $(($(date +%s) - t0)) -lt 20 ] || fail "shutdown took too long with a clip being made"
wait "$slow" || true
st=$(cat "$T/slow.st")
[ "$st" = 503 ] || [ "$st" = 000 ] || fail "the interrupted clip request got $st"
if [ "$st" = 503 ]; then assert_match 'shutting down|stopped' "$(cat "$T/slow.mp4")" "the 503 says why"; fi

# kill -9 in the middle of making it.
t_start_server
curl -sS -o /dev/null "${A[@]}" "$URL/v1/evidence/$E/$Q" &
slow=$!
for i in $(seq 1 100); do [ "$(work)" -gt 0 ] && break; sleep 0.05; done
[ "$(work)" -gt 0 ] || fail "the clip did not start again"
sleep 0.5
t_kill_server
wait "$slow" || true
[ "$(work)" -gt 0 ] || fail "expected a partial output to sweep"
t_start_server
assert_eq 0 "$(work)" "the partial clip was swept at start"
call "${A[@]}" "$URL/v1/evidence/$E"
assert_eq 0 "$(jq '[.renditions | keys[] | select(startswith("clip:"))] | length' <<<"$BODY")" "no clip record after the crash"

# Asked again: made and served whole.
call -o "$T/c.mp4" "${A[@]}" "$URL/v1/evidence/$E/$Q"
assert_eq 200 "$ST" "the clip after the restart"
frames=$(ffprobe -v error -select_streams v -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$T/c.mp4")
assert_eq 1155 "$frames" "0.5 s up to 39 s at 30 fps"
echo ok
