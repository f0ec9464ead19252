#!/usr/bin/env bash
# lifecycle.sh: a training runs to succeeded and to failed with its exit code; restart makes
# run 2 and the log keeps both runs' markers; logs -f follows to the end; wait; list; rm.
. "$(dirname "$0")/lib.sh"
avad_start

out=$(ava image list)
expect_match "image list shows ava-pure:host" "$out" "ava-pure"

ava train create hello --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'echo hi; sleep 1; echo bye' >/dev/null
expect_eq "create starts the training" "$(state hello)" "running"
log=$(ava train logs hello -f 2>/dev/null)
expect_match "logs -f streams until the end" "$log" "hi.*bye"
expect_eq "wait prints the final state" "$(ava train wait hello)" "succeeded"
show=$(ava train show hello --json)
expect_eq "run 1 exit code" "$(echo "$show" | jget runs.0.exit_code)" "0"
expect_eq "run 1 state" "$(echo "$show" | jget runs.0.state)" "succeeded"
expect_eq "show has the image" "$(echo "$show" | jget image)" "ava-pure:host"
expect_eq "show has resources" "$(echo "$show" | jget resources.cpus)" "1"
expect_eq "show has the entry" "$(echo "$show" | jget entry)" "/bin/sh"
logpath=$(echo "$show" | jget log_path)
expect_eq "log path follows AVA's layout" "$logpath" "$AVA_DATA/storage/group/default/admin/run/train_hello_out.log"
events=$(echo "$show" | python3 -c 'import json,sys; print(" ".join(e["state"] for e in json.load(sys.stdin)["runs"][0]["events"]))')
expect_eq "every transition is an event" "$events" "creating queued running succeeded"

ava train create boom --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'echo failing >&2; exit 3' >/dev/null
ava train wait boom >/dev/null
rc=$?
expect_eq "wait exits 1 for a failed run" "$rc" "1"
show=$(ava train show boom --json)
expect_eq "failed state" "$(echo "$show" | jget state)" "failed"
expect_eq "failed exit code" "$(echo "$show" | jget runs.0.exit_code)" "3"
expect_eq "failed reason" "$(echo "$show" | jget runs.0.reason)" "exit code 3"
expect_match "stderr is in the log" "$(ava train logs boom)" "failing"

ava train start hello >/dev/null
ava train wait hello >/dev/null
show=$(ava train show hello --json)
expect_eq "restart makes run 2" "$(echo "$show" | jget run)" "2"
expect_eq "run 2 succeeded" "$(echo "$show" | jget runs.1.state)" "succeeded"
markers=$(grep -c '^==== ava: training hello run' "$logpath")
expect_eq "the log holds one marker per run" "$markers" "2"
expect_match "marker of run 2" "$(grep '==== ava' "$logpath" | tail -1)" "run 2 started"
expect_eq "logs --run 1 shows run 1 only" "$(ava train logs hello --run 1 | grep -c '==== ava')" "1"
expect_eq "logs --all shows every run" "$(ava train logs hello --all | grep -c '==== ava')" "2"

ava train create later --image ava-pure:host --cpu 1 --no-start --entry /bin/true >/dev/null
expect_eq "--no-start stores without a run" "$(ava train show later --json | jget run)" "0"
out=$(ava train list)
expect_match "list shows the trainings" "$out" "hello.*"
expect_eq "list --json counts" "$(ava train list --json | jget trainings | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "3"

ava train rm later >/dev/null
expect_eq "rm removes the training" "$(api GET /trainings/later | cut -d' ' -f1)" "404"
expect_match "start of a running training is a conflict" \
    "$(ava train create busy --image ava-pure:host --cpu 1 --entry /bin/sleep -- 30 >/dev/null; ava train start busy 2>&1)" "already active"
expect_match "rm of an active training is refused" "$(ava train rm busy 2>&1)" "stop it first"
ava train stop busy >/dev/null
ava train wait busy --timeout 10s >/dev/null
expect_eq "stopped" "$(state busy)" "stopped"
e2e_done
