#!/usr/bin/env bash
# stop.sh: stop ends the whole tree (children that called setsid included) within the grace
# period, frees the resources at once, keeps log and outputs; start resumes with
# AVA_RESUME_FROM naming the newest checkpoint.
. "$(dirname "$0")/lib.sh"
avad_start --cpus 1

ava train create tree --image ava-pure:host --cpu 1 --entry /bin/sh -- -c \
    'echo ckpt > "$AVA_OUTPUT_DIR/checkpoint-1"; setsid sleep 4141 & setsid sh -c "sleep 4142" & sleep 4143' >/dev/null
sleep 0.5
expect_eq "the tree is running" "$(pgrep -f '^sleep 414[123]$' | wc -l)" "3"
ava train create next --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'echo "resume=[${AVA_RESUME_FROM-}]"' >/dev/null
expect_eq "a second training waits for the only CPU" "$(state next)" "queued"
t0=$(date +%s.%N)
ava train stop tree >/dev/null
ava train wait tree --timeout 10s >/dev/null
t1=$(date +%s.%N)
expect_eq "stopped" "$(state tree)" "stopped"
expect_eq "stop took at most grace + 1 s" "$(python3 -c "print($t1 - $t0 < 2.0)")" "True"
expect_eq "no process of the run is left in /proc" "$(pgrep -f 'sleep 414[123]' | wc -l)" "0"
wait_state next succeeded 5 && ok "the freed CPU went to the queued training" || fail "queued training did not run"
out=$(ava train show tree --json)
expect_match "the stop event names who asked" "$(echo "$out" | python3 -c 'import json,sys; print([e["reason"] for e in json.load(sys.stdin)["runs"][0]["events"]])')" "stop requested by admin"
outdir=$(echo "$out" | jget output_dir)
expect_eq "outputs are kept" "$(cat "$outdir/checkpoint-1")" "ckpt"

# restart sees the newest checkpoint
ava train create resume --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'echo "resume=[${AVA_RESUME_FROM-}]"' >/dev/null
ava train wait resume >/dev/null
expect_eq "no checkpoint: AVA_RESUME_FROM unset" "$(ava train logs resume | grep resume=)" "resume=[]"
routdir=$(ava train show resume --json | jget output_dir)
echo a > "$routdir/checkpoint-1"; touch -d '2020-01-01' "$routdir/checkpoint-1"
echo b > "$routdir/checkpoint-2"
ava train start resume >/dev/null
ava train wait resume >/dev/null
expect_eq "restart: AVA_RESUME_FROM is the newest checkpoint" "$(ava train logs resume | grep resume=)" "resume=[$routdir/checkpoint-2]"
expect_eq "stop of a finished training is a conflict" "$(ava train stop resume >/dev/null 2>&1; echo $?)" "1"
e2e_done
