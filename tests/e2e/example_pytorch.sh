#!/usr/bin/env bash
# example_pytorch.sh: the public image ava-examples:pytorch (train.py on Debian's python3-torch).
# Without python3-torch it is listed as unavailable, with a reason naming torch, and the
# training part is skipped (saying so). With it, a reduced configuration (a subset, 2 epochs)
# trains on Fashion-MNIST's RecordIO sets (PNG payloads, read by ava_sdk.load_set) and reports
# the same series as the C example: train loss, accuracy and learning rate at global-batch
# steps, val loss and accuracy after each epoch; a stop during epoch 2 and a start resume from
# epoch 1's checkpoint with the step numbering continued, and the run finishes with an
# accuracy well above chance, a checkpoint and a model.
. "$(dirname "$0")/lib.sh"
TORCH=/usr/lib/python3/dist-packages/torch/__init__.py
avad_start
img=$(api GET /images/ava-examples:pytorch | cut -d' ' -f2-)
if [ ! -f "$TORCH" ]; then
    expect_eq "listed unavailable without python3-torch" "$(echo "$img" | jget available)" "False"
    expect_match "the reason names torch" "$(echo "$img" | jget unavailable_reason)" \
        "torch/__init__\.py is not installed"
    echo "# skipped the training: Debian's python3-torch is not installed (apt-get install python3-torch)"
    e2e_done
fi
expect_eq "listed available with python3-torch" "$(echo "$img" | jget available)" "True"
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "# skipped the training: Debian's dataset-fashion-mnist is not installed (scripts/install-deps --test installs it)"
    e2e_done
fi
for _ in $(seq 300); do [ "$(ava dataset show fashion-mnist --json | jget state)" = ready ] && break; sleep 0.1; done
ava dataset format fashion-mnist --format recordio --split 80 --encoding png >/dev/null
# 12000 / 64 = 188 batches an epoch: train points every 20 batches and at each epoch's end
args=(--epochs 2 --train-limit 12000 --val-limit 2000 --report-every 20)
ava train create pt --image ava-examples:pytorch --cpu 2 --train fashion-mnist/recordio/80 -- "${args[@]}" >/dev/null 2>&1
out=$(ava train show pt --json | jget output_dir)
for _ in $(seq 1200); do [ -e "$out/checkpoint-1" ] && break; sleep 0.1; done
expect_eq "epoch 1 leaves a checkpoint" "$(test -e "$out/checkpoint-1" && echo yes)" "yes"
ava train stop pt >/dev/null
expect_eq "stopped during epoch 2" "$(ava train wait pt --timeout 60s)" "stopped"
log1=$(ava train logs pt --run 1)
expect_match "it trained with PyTorch on 2 threads" "$log1" "train\.py: 2 threads \(PyTorch [0-9.a-z]+\)"
expect_match "it read the PNG RecordIO set" "$log1" "train set [^ ]+: 12000 images of 1x28x28"
expect_match "validation after epoch 1" "$log1" "epoch 1 val loss [0-9.]+ acc [0-9.]+ \(2000 images"
steps1=$(api GET '/trainings/pt/metrics/learning_rate?phase=train&run=1&since_step=-1' | cut -d' ' -f2- |
    python3 -c 'import json,sys; print(" ".join(str(p["step"]) for p in json.load(sys.stdin)["points"]))')
expect_match "run 1: train points at global-batch steps" "$steps1" "^20 40 60 80 100 120 140 160 180 188( 200)*"
# the rate reported at step 20 is batch 20's (0-based step 19) under the default cosine schedule
lr20=$(api GET '/trainings/pt/metrics/learning_rate?phase=train&run=1&since_step=-1&limit=1' | cut -d' ' -f2- | jget points.0.value)
expect_eq "cosine learning rate at step 20 ($lr20)" \
    "$(python3 -c "import math; print(abs($lr20 - 0.05 * 0.5 * (1 + math.cos(math.pi * 19 / 376))) < 1e-9)")" "True"
ava train start pt >/dev/null
expect_eq "run 2 finishes" "$(ava train wait pt --timeout 280s)" "succeeded"
log2=$(ava train logs pt --run 2)
expect_match "run 2 resumed from epoch 1's checkpoint" "$log2" "resumed from $out/checkpoint-1 \(epoch 1, step 188\)"
series=$(api GET '/trainings/pt/metrics?run=2' | cut -d' ' -f2- | python3 -c 'import json,sys
for s in json.load(sys.stdin)["runs"][0]["series"]:
    if not s["name"].startswith(("sys.", "ava.")):
        print("%s/%s:%d@%d" % (s["name"], s["phase"], s["count"], s["last_step"]))' | sort | tr '\n' ' ')
# epoch 2 = batches 189..376: points at 200, 220, ..., 360 and 376; val at 376
expect_eq "run 2: the series continue run 1's steps" "$series" \
    "accuracy/train:10@376 accuracy/val:1@376 learning_rate/train:10@376 loss/train:10@376 loss/val:1@376 "
first2=$(api GET '/trainings/pt/metrics/loss?phase=train&run=2&since_step=-1&limit=1' | cut -d' ' -f2- | jget points.0.step)
expect_eq "run 2's first step follows epoch 1's last" "$first2" "200"
acc=$(api GET '/trainings/pt/metrics/accuracy?phase=val&run=2&since_step=-1' | cut -d' ' -f2- | jget points.0.value)
expect_eq "validation accuracy well above chance ($acc)" "$(python3 -c "print($acc > 0.75)")" "True"
expect_eq "checkpoints and a final model" \
    "$(test -s "$out/checkpoint-1" && test -s "$out/checkpoint-2" && test -s "$out/model.bin" && echo yes)" "yes"
e2e_done
