#!/usr/bin/env bash
# t4106: the background scrubber reads objects at its rate (1 MiB/s here, so
# a 30 MiB object takes half a minute); a SIGTERM while it is in the middle
# of one stops the server within seconds, and the next start resumes the
# walk.
. "$(dirname "$0")/lib.sh"
t_start_server --scrub-rate 1048576 --scrub-idle 1
t_noise $((30 << 20)) "$T/big"
t_put "$ADMIN" "$T/big" cam-1 >/dev/null
sleep 3 # the walk is now inside the object
t0=$(date +%s)
t_stop_server
took=$(($(date +%s) - t0))
[ "$took" -le 6 ] || fail "shutdown took $took s while the scrubber was reading a large object"
t_start_server --scrub-rate 0
echo ok
