#!/bin/sh
# start.sh: entry point of the public image ava-examples:c: runs the example trainer
# ava-train-c with the training's arguments (see docs/examples.md). The binary is looked for
# next to this script, then in the install's libexec, then in the source tree's build dir.
d=$(dirname "$0")
for t in "$d/ava-train-c" "$d/../../../../../../libexec/ava/ava-train-c" \
    "$d/../../../../build/examples/trainings/c/simple/ava-train-c"; do
    [ -x "$t" ] && exec "$t" "$@"
done
command -v ava-train-c >/dev/null 2>&1 && exec ava-train-c "$@"
echo "start.sh: ava-train-c not found next to $0 nor in libexec/ava; build and install ava" >&2
exit 127
