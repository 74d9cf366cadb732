#!/usr/bin/env bash
# t4105: the background scrubber saves how far it got, so a restart resumes
# its walk instead of starting over: with 6 objects, stopped after about 3,
# the first pass after the restart ends having checked only the rest.
. "$(dirname "$0")/lib.sh"

# 100 KB objects at 100 KB/s: about one object a second. (--scrub-idle 1:
# the first pass, over an empty archive, is over at once.)
t_start_server --scrub-rate 100000 --scrub-idle 1
REC=$(t_token recorder --device cam-45)
for i in 1 2 3 4 5 6; do
  # Text, not random bytes: random bytes now and then pass for media and
  # get renditions, which are objects too, and this test counts objects.
  { yes "custos scrub test object $i $RANDOM" || true; } | head -c 100000 >"$T/f$i"
  t_put "$REC" "$T/f$i" cam-45 >/dev/null
done
for _ in $(seq 1 150); do
  [ "$(metric custos_scrub_objects_total)" -ge 3 ] && break
  sleep 0.1
done
before=$(metric custos_scrub_objects_total)
[ "$before" -ge 3 ] || fail "the background scrubber checked $before objects in 15 s"
[ "$before" -lt 6 ] || fail "the background scrubber went through all 6 before the restart; the test needs it half-way"
t_stop_server

t_start_server --scrub-rate 100000 --scrub-idle 3600
for _ in $(seq 1 150); do
  call -H "$(auth "$ADMIN")" "$URL/v1/scrub"
  [ "$(jq .background.completed_passes <<<"$BODY")" -ge 1 ] && break
  sleep 0.1
done
assert_eq 1 "$(jq .background.completed_passes <<<"$BODY")" "background passes completed after the restart"
after=$(metric custos_scrub_objects_total)
# At least $before were checked before the stop (maybe one more while it
# stopped); a walk started over would check all 6 before ending its pass.
[ "$after" -ge 1 ] && [ "$after" -le $((6 - before)) ] ||
  fail "the first pass after the restart checked $after objects; $before were checked before it (of 6)"
t_stop_server
