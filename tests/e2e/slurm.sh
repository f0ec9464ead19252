#!/usr/bin/env bash
# slurm.sh: the lifecycle with executor = slurm against a real one-node Slurm on loopback
# (scripts/slurm-start: two fake GPUs): a training succeeds with its log and metrics; three
# one-GPU trainings on two GPUs queue in Slurm; stop of a running and of a pending job; a
# 1-minute time limit ends timed_out; restart is a new job; avad kill -9 re-attaches by job
# id; a job Slurm no longer knows, without an exit record, ends failed/lost.
#
# It starts the cluster when none answers (which needs root: it may install Debian's
# packages) and stops what it started. Without root and without a cluster it is skipped,
# and says so.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export SLURM_BASE=${SLURM_BASE:-/tmp/ava-slurm}
export SLURM_CONF=$SLURM_BASE/etc/slurm.conf
started_cluster=
if ! sinfo -h >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: no Slurm cluster answers and starting one (scripts/slurm-start) needs root"
        exit 77
    fi
    "$ROOT/scripts/slurm-start" || { echo "FAIL - scripts/slurm-start"; exit 1; }
    started_cluster=1
fi
# Cancels the jobs this test made, stops a cluster it started, then the usual cleanup.
slurm_cleanup() {
    local ids
    ids=$(grep -ho 'Slurm job [0-9]*' "$E2E_DIR/avad.log" 2>/dev/null | awk '{print $3}' | sort -u)
    [ -n "$ids" ] && scancel $ids 2>/dev/null
    [ -n "$started_cluster" ] && "$ROOT/scripts/slurm-stop" >/dev/null 2>&1
    e2e_cleanup
}
trap slurm_cleanup EXIT

# last_run NAME FIELD
last_run() { ava train show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][-1][sys.argv[1]])' "$2"; }

avad_start --executor slurm --gpus auto
expect_match "avad asks Slurm what the cluster has" "$(cat "$E2E_DIR/avad.log")" "Slurm cluster: 1 node\(s\); the largest has 2 GPU\(s\)"

# 1. a training succeeds with its log and metrics (SDK pipe and a log rule)
ava train create hello --image ava-pure:host --cpu 1 --metric 'acc=acc=([0-9.]+)' --entry /bin/sh -- -c \
    'echo "job=$SLURM_JOB_ID"; echo "acc=0.75"; python3 -c "import ava_sdk; ava_sdk.report(\"loss\", 7, 0.25, phase=\"train\")"; echo done' >/dev/null
expect_eq "a new run is queued (Slurm decides when it runs)" "$(state hello)" "queued"
wait_state hello succeeded 30 && ok "the Slurm job succeeded" || fail "hello did not succeed"
id=$(last_run hello executor_id)
expect_match "the run shows its job id" "$id" "^[0-9]+$"
expect_eq "and its node" "$(last_run hello node)" "localhost"
expect_eq "the run records the executor" "$(last_run hello executor)" "slurm"
expect_match "ava train show names job and node" "$(ava train show hello)" "executor: +slurm job $id on localhost"
log=$(ava train logs hello)
expect_match "the log has the marker line" "$log" "==== ava: training hello run 1 started"
expect_match "and the job's output, with Slurm's job id" "$log" "job=$id"
expect_match "the events say where it ran" "$(ava train show hello)" "running on localhost \(slurm job $id\)"
m=$(api GET '/trainings/hello/metrics/loss?phase=train' | cut -d' ' -f2-)
expect_eq "an SDK point from the Slurm job is stored" "$(echo "$m" | jget points.0.value)" "0.25"
m=$(api GET '/trainings/hello/metrics/acc' | cut -d' ' -f2-)
expect_eq "a log rule's point is stored" "$(echo "$m" | jget points.0.value)" "0.75"

# 2. three one-GPU trainings on two GPUs: Slurm runs two, the third waits in Slurm's queue
for n in g1 g2 g3; do
    ava train create $n --image ava-pure:host --gpu 1 --entry /bin/sh -- -c \
        'echo "CVD=$CUDA_VISIBLE_DEVICES NVD=$NVIDIA_VISIBLE_DEVICES"; sleep 300' >/dev/null
done
wait_state g1 running 15 && ok "g1 runs" || fail "g1 does not run"
wait_state g2 running 15 && ok "g2 runs" || fail "g2 does not run"
sleep 1.5
expect_eq "g3 stays queued while both GPUs are taken" "$(state g3)" "queued"
expect_match "Slurm holds g3's job pending" "$(squeue -h -j "$(last_run g3 executor_id)" -o %T)" "PENDING"
gpus="$(last_run g1 gpus) $(last_run g2 gpus)"
expect_match "the two running jobs got different GPUs" "$gpus" "^(\[0\] \[1\]|\[1\] \[0\])$"
sleep 0.5
c1=$(ava train logs g1 | grep CVD=)
expect_match "the training sees the GPU Slurm gave it" "$c1" "^CVD=([01]) NVD=\1$"
res=$(ava resources --json)
expect_eq "resources name the executor" "$(echo "$res" | jget executor)" "slurm"
expect_eq "resources list the cluster's node" "$(echo "$res" | jget cluster.nodes.0.name)" "localhost"
expect_eq "with its two GPUs in use" "$(echo "$res" | jget cluster.nodes.0.gpus.used)" "2"
expect_match "ava resources prints the nodes" "$(ava resources)" "localhost"

# 3. stop: the pending job is cancelled at once; the running one ends stopped via the shim
ava train stop g3 >/dev/null
expect_eq "stopping a pending job stops the run at once" "$(state g3)" "stopped"
sleep 0.5
expect_eq "and its Slurm job is gone" "$(squeue -h -j "$(last_run g3 executor_id)" -o %T 2>/dev/null | grep -c PENDING)" "0"
ava train stop g1 >/dev/null
wait_state g1 stopped 20 && ok "a running Slurm job stops" || fail "g1 did not stop"
expect_match "the shim's exit record gives the reason" "$(last_run g1 reason)" "stop"
ava train stop g2 >/dev/null
wait_state g2 stopped 20 && ok "g2 stops" || fail "g2 did not stop"

# 4. restart: a new sbatch, the log keeps both runs
ava train start hello >/dev/null
wait_state hello succeeded 30 && ok "run 2 succeeded" || fail "run 2 did not succeed"
id2=$(last_run hello executor_id)
[ "$id2" != "$id" ] && ok "run 2 is a new Slurm job ($id -> $id2)" || fail "run 2 reused job $id"
logpath=$(ava train show hello --json | jget log_path)
expect_eq "both runs' markers are in the log" "$(grep -c '^==== ava: training hello run' "$logpath")" "2"

# 5. avad kill -9: a running and a pending job are re-attached by job id, not resubmitted
ava train create hold --image ava-pure:host --gpu 2 --entry /bin/sh -- -c 'sleep 6; echo held' >/dev/null
ava train create after --image ava-pure:host --gpu 1 --entry /bin/sh -- -c 'echo after' >/dev/null
wait_state hold running 15 && ok "hold runs" || fail "hold does not run"
sleep 1
expect_eq "after waits for the GPUs" "$(state after)" "queued"
hold_id=$(last_run hold executor_id)
after_id=$(last_run after executor_id)
avad_kill9
avad_start --executor slurm --gpus auto
for _ in $(seq 50); do grep -q "re-attached to hold run 1 ($hold_id)" "$E2E_DIR/avad.log" && break; sleep 0.1; done
expect_match "avad re-attached to the running job" "$(cat "$E2E_DIR/avad.log")" "re-attached to hold run 1 \($hold_id\)"
wait_state hold succeeded 30 && ok "the running job ended succeeded after the restart" || fail "hold"
wait_state after succeeded 30 && ok "the pending job ran after the restart" || fail "after"
expect_eq "without a second submission" "$(last_run after executor_id)" "$after_id"
expect_eq "one submission line for it" "$(grep -c "Slurm job $after_id submitted" "$E2E_DIR/avad.log")" "1"

# 6. a job Slurm no longer knows that left no exit record: failed/lost
ava train create ghost --image ava-pure:host --cpu 1 --entry /bin/sleep -- 300 >/dev/null
wait_state ghost running 15 && ok "ghost runs" || fail "ghost does not run"
ghost_id=$(last_run ghost executor_id)
avad_kill9
scancel -s KILL --full "$ghost_id"
sleep 1
scancel "$ghost_id" 2>/dev/null
python3 - "$AVA_DATA/ava.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE runs SET executor_id = '999999' WHERE state = 'running'")
db.commit()
EOF
rm -f "$AVA_DATA"/runs/*/1/exit
avad_start --executor slurm --gpus auto
wait_state ghost failed 20 && ok "an unknown job without an exit record ends failed" || fail "ghost"
expect_match "with reason lost" "$(last_run ghost reason)" "^lost: Slurm no longer knows job 999999"

# 7. the 1-minute time limit: Slurm's limit is rounded up, the shim applies the exact one
ava train create limit --image ava-pure:host --cpu 1 --max-runtime 1m --entry /bin/sleep -- 600 >/dev/null
wait_state limit running 15 && ok "limit runs" || fail "limit does not run"
expect_match "sbatch got whole minutes (limit + grace, rounded up)" \
    "$(scontrol show job -o "$(last_run limit executor_id)")" "TimeLimit=00:02:00"
wait_state limit timed_out 90 && ok "the 1-minute limit ends the run timed_out" || fail "limit"
expect_match "with the limit as reason" "$(last_run limit reason)" "max runtime 1m reached"
e2e_done
