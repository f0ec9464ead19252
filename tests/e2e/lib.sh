# lib.sh: the end-to-end harness: a real avad in a temp dir on a free port, driven with the
# real `ava` CLI and curl, plus small assertion helpers. Sourced by every *.sh test here.
set -u

AVA_BUILD=${AVA_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build" && pwd)}
AVA_BIN="$AVA_BUILD/ava"
AVAD_BIN="$AVA_BUILD/avad"
E2E_DIR=$(mktemp -d /tmp/ava-e2e.XXXXXX)
E2E_FAILS=0
E2E_PASSES=0
AVAD_PID=
export AVA_DATA="$E2E_DIR/var"

# Kills avad and every process started below the test's temp dir, then removes it.
e2e_cleanup() {
    [ -n "$AVAD_PID" ] && kill -9 "$AVAD_PID" 2>/dev/null
    pkill -9 -f "$E2E_DIR" 2>/dev/null
    sleep 0.2
    rm -rf "$E2E_DIR"
}
trap e2e_cleanup EXIT

# Starts avad with the given extra flags and waits until it answers. Exports AVA_SERVER
# and AVA_TOKEN for the admin.
avad_start() {
    rm -f "$AVA_DATA/endpoint"
    "$AVAD_BIN" --data "$AVA_DATA" --listen 127.0.0.1:0 --grace 1s "$@" \
        >>"$E2E_DIR/avad.log" 2>&1 &
    AVAD_PID=$!
    disown "$AVAD_PID" 2>/dev/null
    for _ in $(seq 100); do
        [ -s "$AVA_DATA/endpoint" ] && break
        kill -0 "$AVAD_PID" 2>/dev/null || { cat "$E2E_DIR/avad.log"; fail "avad died at start"; exit 1; }
        sleep 0.05
    done
    export AVA_SERVER=$(cat "$AVA_DATA/endpoint")
    export AVA_TOKEN=$(cat "$AVA_DATA/admin.token")
}

# kill -9 of avad (trainings keep running under their shims).
avad_kill9() {
    kill -9 "$AVAD_PID"
    avad_wait_exit
}

# Waits until the avad process is gone.
avad_wait_exit() {
    while kill -0 "$AVAD_PID" 2>/dev/null; do sleep 0.05; done
    AVAD_PID=
}

ava() { "$AVA_BIN" "$@"; }

# HTTP helper: api METHOD PATH [BODY] -> prints "STATUS BODY" using $AVA_TOKEN.
api() {
    local method=$1 path=$2 body=${3-}
    local args=(-s -o "$E2E_DIR/resp" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $AVA_TOKEN")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    local code
    code=$(curl "${args[@]}" "$AVA_SERVER/api/v1$path")
    echo "$code $(cat "$E2E_DIR/resp")"
}

# JSON field extraction with jq-like paths through python3 (stdlib only).
jget() {
    python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    if k=="": continue
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v,(dict,list)) else ("null" if v is None else v))' "$1"
}

ok() { E2E_PASSES=$((E2E_PASSES + 1)); echo "ok - $*"; }
fail() { E2E_FAILS=$((E2E_FAILS + 1)); echo "FAIL - $*"; }

# expect_eq DESC ACTUAL EXPECTED
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}
# expect_match DESC ACTUAL REGEX
expect_match() {
    if [[ "$2" =~ $3 ]]; then ok "$1"; else fail "$1: '$2' does not match /$3/"; fi
}

# state NAME -> the latest run's state
state() { ava train show "$1" --json | jget state; }

# wait_state NAME STATE SECONDS: polls until the latest run is in STATE.
wait_state() {
    local deadline=$((SECONDS + $3)) s
    while [ $SECONDS -le $deadline ]; do
        s=$(state "$1" 2>/dev/null)
        [ "$s" = "$2" ] && return 0
        sleep 0.1
    done
    echo "  (state of $1 is '$s', waited for '$2')"
    return 1
}

# Reports the totals and exits non-zero when any check failed.
e2e_done() {
    echo "# $(basename "$0"): $E2E_PASSES passed, $E2E_FAILS failed"
    if [ "$E2E_FAILS" -ne 0 ]; then
        echo "--- avad log ---"
        tail -n 50 "$E2E_DIR/avad.log"
        exit 1
    fi
    exit 0
}
