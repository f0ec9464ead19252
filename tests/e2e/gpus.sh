#!/usr/bin/env bash
# gpus.sh: with --gpus 0,1 three one-GPU trainings: two run with different
# CUDA_VISIBLE_DEVICES, the third is queued until one ends; resources shows who holds what.
. "$(dirname "$0")/lib.sh"
avad_start --gpus 0,1

for n in g1 g2; do
    ava train create $n --image ava-pure:host --gpu 1 --entry /bin/sh -- -c \
        'echo "CVD=$CUDA_VISIBLE_DEVICES NVD=$NVIDIA_VISIBLE_DEVICES"; sleep 5' >/dev/null
done
ava train create g3 --image ava-pure:host --gpu 1 --entry /bin/sh -- -c \
    'echo "CVD=$CUDA_VISIBLE_DEVICES"' >/dev/null
expect_eq "g1 runs" "$(state g1)" "running"
expect_eq "g2 runs" "$(state g2)" "running"
expect_eq "g3 is queued" "$(state g3)" "queued"
res=$(ava resources --json)
expect_eq "resources: GPU 0 held by g1" "$(echo "$res" | jget gpus.0.training)" "admin/g1"
expect_eq "resources: GPU 1 held by g2" "$(echo "$res" | jget gpus.1.training)" "admin/g2"
expect_eq "resources: one queued" "$(echo "$res" | jget queued)" "1"
expect_match "ava resources prints a table" "$(ava resources)" "g1"
sleep 0.3
c1=$(ava train logs g1 | grep CVD=)
c2=$(ava train logs g2 | grep CVD=)
expect_eq "g1 sees GPU 0" "$c1" "CVD=0 NVD=0"
expect_eq "g2 sees GPU 1" "$c2" "CVD=1 NVD=1"
wait_state g3 succeeded 10 && ok "g3 ran once a GPU was freed" || fail "g3 never ran"
expect_match "g3 got a freed GPU" "$(ava train logs g3 | grep CVD=)" "^CVD=[01]$"
expect_eq "GPU runs record their GPUs" "$(ava train show g1 --json | jget runs.0.gpus)" "[0]"

ava train create cpu --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'echo "CVD=[$CUDA_VISIBLE_DEVICES]"' >/dev/null
ava train wait cpu >/dev/null
expect_eq "a CPU training gets an empty CUDA_VISIBLE_DEVICES" "$(ava train logs cpu | grep CVD=)" "CVD=[]"
out=$(ava train create big --image ava-pure:host --gpu 3 --entry /bin/true 2>&1)
expect_match "more GPUs than exist is refused" "$out" "3 GPUs requested, this server has 2"
e2e_done
