#!/usr/bin/env bash
# timelimit.sh: --max-runtime 3s on sleep 60 ends timed_out within 3 s + grace (1 s) + 1 s;
# a limit over the platform ceiling is refused at create.
. "$(dirname "$0")/lib.sh"
avad_start --max-runtime 1h

start=$(date +%s.%N)
ava train create slow --image ava-pure:host --cpu 1 --max-runtime 3s --entry /bin/sleep -- 60 >/dev/null
ava train wait slow --timeout 20s >/dev/null
end=$(date +%s.%N)
expect_eq "the run timed out" "$(state slow)" "timed_out"
elapsed=$(python3 -c "print(round($end - $start, 2))")
expect_eq "ended within 3 s + 1 s grace + 1 s (took ${elapsed}s)" "$(python3 -c "print($elapsed <= 5.0 and $elapsed >= 2.9)")" "True"
show=$(ava train show slow --json)
expect_match "reason names the limit" "$(echo "$show" | jget runs.0.reason)" "max runtime 3s reached"
events=$(echo "$show" | python3 -c 'import json,sys; print(" ".join(e["state"] for e in json.load(sys.stdin)["runs"][0]["events"]))')
expect_eq "stopping is recorded before timed_out" "$events" "creating queued running stopping timed_out"

# an entry that ignores SIGTERM is killed after the grace period
ava train create stubborn --image ava-pure:host --cpu 1 --max-runtime 2s --entry /bin/sh -- -c 'trap "" TERM; sleep 60 & wait; sleep 60' >/dev/null
ava train wait stubborn --timeout 20s >/dev/null
expect_eq "a SIGTERM-ignoring entry still times out" "$(state stubborn)" "timed_out"

out=$(ava train create toolong --image ava-pure:host --cpu 1 --max-runtime 2h --entry /bin/true 2>&1)
rc=$?
expect_eq "over the ceiling is refused" "$rc" "1"
expect_match "the message names the ceiling" "$out" "limit of 1h"
expect_eq "nothing stored" "$(api GET /trainings/toolong | cut -d' ' -f1)" "404"
e2e_done
