#!/usr/bin/env bash
# example.sh: the public example image trains on Fashion-MNIST (a reduced configuration so
# CI stays fast): it succeeds with an accuracy well above chance and reports its curves; a
# stop during epoch 2 and a start resume from epoch 1's checkpoint with the step numbering
# continued, and the run finishes.
. "$(dirname "$0")/lib.sh"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "# skipped: Debian's dataset-fashion-mnist is not installed (scripts/install-deps --test installs it)"
    echo "ok - skipped for a missing package"
    exit 0
fi
avad_start
for _ in $(seq 300); do [ "$(ava dataset show fashion-mnist --json | jget state)" = ready ] && break; sleep 0.1; done
ava dataset format fashion-mnist --format recordio --split 80 --encoding raw >/dev/null
args=(--epochs 3 --train-limit 12000 --val-limit 2000 --report-every 20)
ava train create ex --image ava-examples:c --cpu 2 --train fashion-mnist/recordio/80 -- "${args[@]}" >/dev/null 2>&1
out=$(ava train show ex --json | jget output_dir)
for _ in $(seq 600); do [ -e "$out/checkpoint-1" ] && break; sleep 0.1; done
expect_eq "epoch 1 leaves a checkpoint" "$(test -e "$out/checkpoint-1" && echo yes)" "yes"
ava train stop ex >/dev/null
expect_eq "stopped during epoch 2" "$(ava train wait ex --timeout 60s)" "stopped"
ava train start ex >/dev/null
expect_eq "run 2 finishes" "$(ava train wait ex --timeout 300s)" "succeeded"
log2=$(ava train logs ex --run 2)
expect_match "run 2 resumed from epoch 1's checkpoint" "$log2" "resumed from $out/checkpoint-1 \(epoch 1, step [0-9]+\)"
first2=$(api GET '/trainings/ex/metrics/loss?phase=train&run=2&since_step=-1&limit=1' | cut -d' ' -f2- | jget points.0.step)
ckstep=$(echo "$log2" | sed -n 's/.*resumed from .* (epoch 1, step \([0-9]*\)).*/\1/p')
expect_eq "its first step follows epoch 1's last ($ckstep < $first2)" "$(python3 -c "print($ckstep < $first2 <= $ckstep + 20)")" "True"
acc=$(api GET '/trainings/ex/metrics/accuracy?phase=val&run=2' | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.load(sys.stdin)["points"][-1]["value"])')
expect_eq "validation accuracy well above chance ($acc)" "$(python3 -c "print($acc > 0.75)")" "True"
expect_eq "a final model" "$(test -s "$out/model.bin" && echo yes)" "yes"
e2e_done
