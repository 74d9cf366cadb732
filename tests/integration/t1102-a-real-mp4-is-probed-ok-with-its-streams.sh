#!/usr/bin/env bash
# t1102: a real recording (H.264 + AAC in MP4, made with ffmpeg) is probed in
# the background to media.status "ok" with its video and audio streams, and
# served with a video Content-Type.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not installed: skipped"; exit 77; }
probed() {
  for _ in $(seq 1 200); do
    call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$1"
    assert_eq 200 "$ST" "GET evidence $1"
    [ "$(jq -r '.media.status' <<<"$BODY")" != pending ] && return 0
    sleep 0.1
  done
  fail "evidence $1 is still pending after 20 s"
}

t_make_mp4 "$T/clip.mp4" 1
t_start_server
REC=$(t_token recorder --device cam-1102)
size=$(stat -c %s "$T/clip.mp4")
call -X POST "${TUS[@]}" "${OCT[@]}" -H "$(auth "$REC")" -H "Upload-Length: $size" \
  -H "Upload-Metadata: device_id $(b64 cam-1102),filename $(b64 clip.mp4),recorded_at $(b64 2026-05-06T07:08:09Z)" \
  --data-binary "@$T/clip.mp4" "$URL/v1/uploads"
assert_eq 201 "$ST" "upload of an MP4"
ev=$(hdr Custos-Evidence-Id)

probed "$ev"
assert_eq ok "$(jq -r .media.status <<<"$BODY")" "media.status of a real MP4 ($(jq -c .media <<<"$BODY"))"
n=$(jq '.media.streams | length' <<<"$BODY")
[ "$n" -ge 2 ] || fail "expected at least 2 streams, got $n"
jq -e '.media.streams | any(.type == "video" and .codec == "h264" and .width == 160 and .height == 120)' \
  <<<"$BODY" >/dev/null || fail "no 160x120 h264 video stream in $(jq -c .media.streams <<<"$BODY")"
jq -e '.media.streams | any(.type == "audio" and .codec == "aac")' <<<"$BODY" >/dev/null ||
  fail "no aac audio stream in $(jq -c .media.streams <<<"$BODY")"
assert_match '^2026-05-06T07:08:09' "$(jq -r .recorded_at <<<"$BODY")" "recorded_at from the metadata"

call -o /dev/null -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ev/content"
assert_eq 200 "$ST" "GET content"
assert_match '^video/mp4' "$(hdr Content-Type)" "Content-Type once probed"

t_stop_server
