#!/usr/bin/env bash
# t1200: a real recording (H.264 + AAC in MP4) pushed with custos push gets
# its four renditions, each "done": custos get --rendition fetches each with
# the record's SHA-256; the master is Matroska that ffmpeg decodes without a
# word and whose CUSTOS_SOURCE_SHA256 tag is the original's hash; the frame
# hashes are byte for byte what `ffmpeg -f framehash -hash sha256` prints;
# the access copy is H.264 + AAC in MP4 with moov before mdat, its longest
# side at most 1280 (a 1920x1080 clip) or at most --access-max-side (320,
# after a restart); the poster is a JPEG. Each rendition is served with its
# Content-Type, has exactly one "rendition" event with its hash in the item's
# chain of custody, and custos show lists all four. Offline, custos verify
# passes.
. "$(dirname "$0")/lib.sh"

for t in ffmpeg ffprobe python3; do
  command -v "$t" >/dev/null || { echo "$t not installed: skipped"; exit 77; }
done
mk() { ffmpeg -hide_banner -loglevel error -y "$@" || fail "ffmpeg could not make a fixture: $*"; }
# A clip: OUT SIZE SECONDS FREQ (H.264 yuv420p + AAC, in MP4).
clip() {
  mk -f lavfi -i "testsrc=size=$2:rate=25" -f lavfi -i "sine=frequency=$4" -t "$3" \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$1"
}
clip "$T/rec.mp4" 320x240 2 440
clip "$T/hd.mp4" 1920x1080 1 550
clip "$T/vga.mp4" 640x480 1 660
SHA=$(sha256sum "$T/rec.mp4" | cut -d' ' -f1)

# fetch ID KIND OUT: GET /content?rendition=KIND as admin into OUT; sets ST
# and the headers in $T/h.
fetch() {
  ST=$(curl -sS -D "$T/h" -o "$3" -w '%{http_code}' -H "$(auth "$ADMIN")" \
    "$URL/v1/evidence/$1/content?rendition=$2") || ST=000
}
# The top-level boxes of an MP4, in order, one line.
boxes() {
  python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
i, out = 0, []
while i + 8 <= len(d):
    size, typ = struct.unpack(">I4s", d[i:i + 8])
    if size == 1:
        size = struct.unpack(">Q", d[i + 8:i + 16])[0]
    elif size == 0:
        size = len(d) - i
    out.append(typ.decode("latin-1"))
    if size < 8:
        out.append("BAD-SIZE")
        break
    i += size
print(" ".join(out))
PY
}
# Width and height of the first video stream, "WxH".
dims() { ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$1"; }
longest() { local w=${1%x*} h=${1#*x}; [ "$w" -gt "$h" ] && echo "$w" || echo "$h"; }
# check_access FILE MAXSIDE: H.264 + AAC in MP4, moov first, longest side <= MAXSIDE.
check_access() {
  local fmt b d
  fmt=$(ffprobe -v error -show_entries format=format_name -of csv=p=0 "$1")
  assert_match 'mp4' "$fmt" "the access copy's container"
  assert_eq h264 "$(ffprobe -v error -select_streams v -show_entries stream=codec_name -of csv=p=0 "$1")" \
    "the access copy's video codec"
  assert_eq aac "$(ffprobe -v error -select_streams a -show_entries stream=codec_name -of csv=p=0 "$1")" \
    "the access copy's audio codec"
  b=$(boxes "$1")
  assert_match '(^| )moov( .*)? mdat( |$)' "$b" "top-level boxes of the access copy (moov must come before mdat)"
  [[ " $b " != *" mdat "*" moov "* ]] || fail "the access copy has a moov after its mdat: $b"
  d=$(dims "$1")
  assert_match '^[0-9]+x[0-9]+$' "$d" "the access copy's size"
  [ "$(longest "$d")" -le "$2" ] || fail "the access copy is $d: its longest side is over $2"
}

t_start_server
ID=$(t_push "$T/rec.mp4" cam-1200)
HD=$(t_push "$T/hd.mp4" cam-1200)

t_rend_settle "$ID"
REC=$BODY
for k in master access framehash poster; do
  assert_eq done "$(jq -r ".renditions.$k.state" <<<"$REC")" \
    "state of the $k rendition ($(jq -c ".renditions.$k | {state, error, reason}" <<<"$REC"))"
  assert_eq "$SHA" "$(jq -r ".renditions.$k.source_sha256" <<<"$REC")" "source_sha256 of the $k rendition"
done

# custos get --rendition: each download succeeds with the record's hash.
export CUSTOS_SERVER="$URL" CUSTOS_TOKEN="$ADMIN"
for k in master access framehash poster; do
  want=$(jq -r ".renditions.$k.sha256" <<<"$REC")
  assert_match '^[0-9a-f]{64}$' "$want" "sha256 of the $k record"
  rc=0
  line=$("$CUSTOS" get "$ID" --rendition "$k" -o "$T/got.$k" 2>"$T/get.err") || rc=$?
  assert_eq 0 "$rc" "custos get --rendition $k exit status ($(cat "$T/get.err"))"
  assert_eq "$ID $want $T/got.$k" "$line" "custos get --rendition $k prints id, hash, path"
  assert_eq "$want" "$(sha256sum "$T/got.$k" | cut -d' ' -f1)" "sha256 of the downloaded $k"
  assert_eq "$(jq -r ".renditions.$k.size" <<<"$REC")" "$(stat -c %s "$T/got.$k")" "size of the downloaded $k"
done

# The master: Matroska, decodes silently, tagged with the original's hash.
assert_match 'matroska' "$(ffprobe -v error -show_entries format=format_name -of csv=p=0 "$T/got.master")" \
  "the master's container"
rc=0
ffmpeg -v error -i "$T/got.master" -f null - >"$T/dec.out" 2>&1 || rc=$?
assert_eq 0 "$rc" "ffmpeg decoding the master"
[ ! -s "$T/dec.out" ] || fail "ffmpeg reported errors decoding the master: $(head -c 500 "$T/dec.out")"
tag=$(ffprobe -v error -show_entries format_tags=CUSTOS_SOURCE_SHA256 -of default=nw=1:nk=1 "$T/got.master")
assert_eq "$SHA" "$tag" "the master's CUSTOS_SOURCE_SHA256 tag"
assert_eq 2 "$(ffprobe -v error -show_entries stream=index -of csv=p=0 "$T/got.master" | wc -l)" \
  "streams in the master"

# The frame hashes are ffmpeg's framehash output, byte for byte.
ffmpeg -v error -i "$T/rec.mp4" -map 0:V? -map 0:a? -f framehash -hash sha256 - >"$T/fh.ffmpeg" ||
  fail "ffmpeg framehash of the original failed"
[ -s "$T/fh.ffmpeg" ] || fail "ffmpeg printed no frame hashes"
cmp -s "$T/fh.ffmpeg" "$T/got.framehash" ||
  fail "the framehash rendition differs from ffmpeg's: $(diff "$T/fh.ffmpeg" "$T/got.framehash" | head -5)"

# The access copy of a small clip, and the poster.
check_access "$T/got.access" 1280
assert_eq 320x240 "$(dims "$T/got.access")" "a 320x240 clip's access copy is not scaled up"
assert_eq "ff d8 ff" "$(head -c 3 "$T/got.poster" | od -An -tx1 | xargs)" "the poster's first bytes (JPEG SOI)"
assert_eq mjpeg "$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$T/got.poster")" "the poster's codec"

# Content-Type of each rendition, and the original's bytes are still the original.
declare -A CT=([master]='video/x-matroska' [access]='video/mp4' [framehash]='text/plain; charset=utf-8'
  [poster]='image/jpeg')
for k in master access framehash poster; do
  fetch "$ID" "$k" "$T/c.$k"
  assert_eq 200 "$ST" "GET content?rendition=$k"
  assert_eq "${CT[$k]}" "$(hdr Content-Type)" "Content-Type of the $k"
  assert_eq "\"$(jq -r ".renditions.$k.sha256" <<<"$REC")\"" "$(hdr ETag)" "ETag of the $k"
  cmp -s "$T/c.$k" "$T/got.$k" || fail "content?rendition=$k differs from what custos get saved"
done
fetch "$ID" original "$T/c.original"
assert_eq 200 "$ST" "GET content?rendition=original"
cmp -s "$T/c.original" "$T/rec.mp4" || fail "the original is no longer served byte-identical"

# One rendition event per kind, with the record's hash.
call -H "$(auth "$ADMIN")" "$URL/v1/evidence/$ID/events"
assert_eq 200 "$ST" "GET events"
for k in master access framehash poster; do
  evs=$(jq -c --arg k "$k" '[.events[].event | select(.type == "rendition" and .kind == $k)]' <<<"$BODY")
  assert_eq 1 "$(jq length <<<"$evs")" "rendition events of kind $k"
  assert_eq "$(jq -r ".renditions.$k.sha256" <<<"$REC")" "$(jq -r '.[0].sha256' <<<"$evs")" \
    "the $k event's sha256"
  assert_eq "$ID" "$(jq -r '.[0].evidence' <<<"$evs")" "the $k event's evidence"
done
assert_eq 4 "$(jq '[.events[].event | select(.type == "rendition")] | length' <<<"$BODY")" "rendition events in all"

# custos show lists the four renditions.
shown=$("$CUSTOS" show "$ID")
for k in master access framehash poster; do
  sha=$(jq -r ".renditions.$k.sha256" <<<"$REC")
  grep -qE "^(renditions)? +$k +done +${sha:0:16}" <<<"$shown" ||
    fail "custos show does not list the $k as done with its hash: $shown"
done

# A 1920x1080 clip: the access copy is at most 1280 on its longest side.
t_rend_settle "$HD"
assert_eq done "$(jq -r .renditions.access.state <<<"$BODY")" "state of the HD clip's access copy"
"$CUSTOS" get "$HD" --rendition access -o "$T/hd.access" >/dev/null || fail "custos get of the HD access copy"
check_access "$T/hd.access" 1280
[ "$(longest "$(dims "$T/hd.access")")" -lt 1920 ] || fail "the HD clip's access copy was not scaled down"

# --access-max-side 320 after a restart.
t_stop_server
t_start_server --access-max-side 320
export CUSTOS_SERVER="$URL"
VGA=$(t_push "$T/vga.mp4" cam-1200)
t_rend_settle "$VGA"
assert_eq done "$(jq -r .renditions.access.state <<<"$BODY")" "state of the 640x480 clip's access copy"
assert_eq 320 "$(jq -r .renditions.access.params.max_side <<<"$BODY")" "max_side in the access record's params"
"$CUSTOS" get "$VGA" --rendition access -o "$T/vga.access" >/dev/null || fail "custos get of the 640x480 access copy"
check_access "$T/vga.access" 320

t_stop_server
t_verify
assert_eq 0 "$VRC" "custos verify after the renditions ($(cat "$T/v.txt"))"
assert_eq true "$(jq -r .ok "$T/v.json")" "verify --json ok"
