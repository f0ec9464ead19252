#!/bin/sh
# start.sh: entry point of the public image ava-examples:pytorch: runs train.py (beside this
# script) with the training's arguments (see docs/examples.md) under Debian's python3, the one
# that python3-torch installs into (a python3 earlier on PATH, e.g. pyenv's, would not see it).
d=$(dirname "$0")
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" -u "$d/train.py" "$@"
