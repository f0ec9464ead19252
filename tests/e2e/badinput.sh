#!/usr/bin/env bash
# badinput.sh: every bad request gets a 4xx with a message naming the problem, and the
# database is unchanged (same rows in every table).
. "$(dirname "$0")/lib.sh"
avad_start --gpus 0,1 --max-runtime 1h

db_counts() {
    python3 - "$AVA_DATA/ava.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(" ".join(str(db.execute(f"select count(*) from {t}").fetchone()[0])
               for t in ("groups", "users", "images", "trainings", "runs", "run_events")))
PY
}

ava train create taken --image ava-pure:host --cpu 1 --entry /bin/true >/dev/null
ava train wait taken >/dev/null
before=$(db_counts)
long=$(printf 'n%.0s' $(seq 65))
ok_body='"image":"ava-pure:host","cpus":1,"entry":"/bin/true"'
# status|message regex|body
cases=(
  "400|bad training name|{\"name\":\"\",$ok_body}"
  "400|bad training name|{\"name\":\"-x\",$ok_body}"
  "400|bad training name|{\"name\":\"a/b\",$ok_body}"
  "400|bad training name|{\"name\":\"..\",$ok_body}"
  "400|bad training name|{\"name\":\"$long\",$ok_body}"
  "400|bad training name|{\"name\":\"sp ace\",$ok_body}"
  "409|already have a training named 'taken'|{\"name\":\"taken\",$ok_body}"
  "400|entry is required|{\"name\":\"e1\",\"image\":\"ava-pure:host\",\"cpus\":1}"
  "400|must be an absolute path|{\"name\":\"e2\",\"image\":\"ava-pure:host\",\"cpus\":1,\"entry\":\"bin/true\"}"
  "404|image nope:v1 not found|{\"name\":\"i1\",\"image\":\"nope:v1\",\"cpus\":1,\"entry\":\"/bin/true\"}"
  "400|NAME:TAG|{\"name\":\"i2\",\"image\":\"notag\",\"cpus\":1,\"entry\":\"/bin/true\"}"
  "422|3 GPUs requested, this server has 2|{\"name\":\"g1\",\"image\":\"ava-pure:host\",\"gpus\":3,\"entry\":\"/bin/true\"}"
  "422|over the platform's limit of 1h|{\"name\":\"r1\",$ok_body,\"max_runtime_ms\":7200000}"
  "422|CPUs requested, this server has|{\"name\":\"c1\",\"image\":\"ava-pure:host\",\"cpus\":4000,\"entry\":\"/bin/true\"}"
  "400|exactly one of cpus or gpus|{\"name\":\"c2\",\"image\":\"ava-pure:host\",\"entry\":\"/bin/true\"}"
  "400|exactly one of cpus or gpus|{\"name\":\"c3\",\"image\":\"ava-pure:host\",\"cpus\":1,\"gpus\":1,\"entry\":\"/bin/true\"}"
  "400|malformed JSON|{\"name\": \"j1\", "
  "400|malformed JSON|not json at all"
  "400|must be a JSON object|[1,2,3]"
  "400|unknown field .colour.|{\"name\":\"u1\",$ok_body,\"colour\":\"red\"}"
  "400|set by the platform|{\"name\":\"v1\",$ok_body,\"env\":{\"AVA_RUN\":\"9\"}}"
  "400|args\\[1\\] must be a string|{\"name\":\"a1\",$ok_body,\"args\":[\"x\",2]}"
  "400|must be positive|{\"name\":\"m1\",$ok_body,\"max_runtime_ms\":0}"
  "400|field .name. must be a string|{\"name\":5,$ok_body}"
)
for c in "${cases[@]}"; do
    want=${c%%|*}; rest=${c#*|}; re=${rest%%|*}; body=${rest#*|}
    resp=$(api POST /trainings "$body")
    code=${resp%% *}; msg=$(echo "${resp#* }" | jget error.message 2>/dev/null)
    if [ "$code" = "$want" ] && [[ "$msg" =~ $re ]]; then ok "$want for ${body:0:60}"; else fail "want $want /$re/ for ${body:0:60}: got $resp"; fi
done

# an oversized body is refused before it is parsed
python3 -c 'print("{\"name\":\"big\",\"description\":\"" + "x"*2000000 + "\"}")' > "$E2E_DIR/big.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AVA_TOKEN" --data-binary @"$E2E_DIR/big.json" "$AVA_SERVER/api/v1/trainings")
expect_eq "oversized body: 413" "$code" "413"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AVA_TOKEN" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$AVA_SERVER/api/v1/trainings")
expect_match "oversized headers are refused" "$code" "^4[0-9][0-9]$"
expect_eq "unknown route: 404" "$(api GET /nothing | cut -d' ' -f1)" "404"
expect_eq "bad run number: 400" "$(api GET /trainings/taken/runs/x | cut -d' ' -f1)" "400"
expect_eq "missing run: 404" "$(api GET /trainings/taken/runs/9 | cut -d' ' -f1)" "404"
expect_eq "the error envelope has a code" "$(api GET /trainings/none | cut -d' ' -f2- | jget error.code)" "not_found"

# the CLI refuses bad input before sending and says why, exit 1 or 2
out=$(ava train create x --image ava-pure:host --cpu 1 --gpu 1 --entry /bin/true 2>&1); rc=$?
expect_match "CLI: --cpu and --gpu together" "$rc:$out" "^[12]:.*(cpu|gpu)"
out=$(ava train create x --image ava-pure:host --cpu 1 --entry /bin/true --max-runtime 3x 2>&1); rc=$?
expect_match "CLI: bad duration" "$rc:$out" "^[12]:.*3x"
expect_eq "the database is unchanged" "$(db_counts)" "$before"
e2e_done
