#!/usr/bin/env bash
# restart.sh: avad dies (kill -9) while trainings run and comes back: runs keep going and
# end in the right state; the time limit fires while avad is down; a run whose shim died
# without an exit record ends failed/lost; a clean SIGTERM leaves trainings running.
. "$(dirname "$0")/lib.sh"
avad_start --cpus 8

ava train create survive --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'sleep 3; echo done; exit 0' >/dev/null
ava train create limit --image ava-pure:host --cpu 1 --max-runtime 2s --entry /bin/sleep -- 5151 >/dev/null
ava train create orphan --image ava-pure:host --cpu 1 --entry /bin/sleep -- 5252 >/dev/null
ava train create queued --image ava-pure:host --cpu 8 --entry /bin/sh -- -c 'echo ran' >/dev/null
expect_eq "a big training queues behind the others" "$(state queued)" "queued"
shim=$(ava train show orphan --json | jget runs.0.executor_id | cut -d: -f1)
sleep 0.5
avad_kill9
kill -9 "$shim"
pkill -9 -f '^/bin/sleep 5252$'
sleep 3.5
expect_eq "the time limit fired while avad was down" "$(pgrep -f '^/bin/sleep 5151$' | wc -l)" "0"
avad_start --cpus 8
ava train wait survive --timeout 10s >/dev/null
expect_eq "a run survives kill -9 of avad" "$(state survive)" "succeeded"
expect_eq "with its exit code" "$(ava train show survive --json | jget runs.0.exit_code)" "0"
expect_match "and its whole log" "$(ava train logs survive)" "done"
expect_eq "the limit's outcome is recorded" "$(state limit)" "timed_out"
expect_eq "a shim gone without a record ends failed" "$(state orphan)" "failed"
expect_match "with reason lost" "$(ava train show orphan --json | jget runs.0.reason)" "^lost"
wait_state queued succeeded 10 && ok "the queued run started after the restart" || fail "queued run lost"

ava train create clean --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'sleep 2; exit 5' >/dev/null
kill -TERM "$AVAD_PID"
avad_wait_exit
expect_eq "a clean shutdown leaves the training running" "$(pgrep -f 'sleep 2; exit 5' >/dev/null && echo yes)" "yes"
avad_start --cpus 8
ava train wait clean --timeout 10s >/dev/null
expect_eq "it ends with its own state after the restart" "$(state clean)" "failed"
expect_eq "and its exit code" "$(ava train show clean --json | jget runs.0.exit_code)" "5"
e2e_done
