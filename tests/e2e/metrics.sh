#!/usr/bin/env bash
# metrics.sh: points from the SDK pipe, log parsers and the HTTP report endpoint reach the
# series API; ingest is exactly once across two kill -9 of avad (points and the series'
# buckets); downsampling, raw pages and the live stream; bad lines are refused one by one.
. "$(dirname "$0")/lib.sh"
avad_start --cpus 4

# 100,000 numbered points written to the SDK pipe (fd 3) in ten bursts
ava train create many --image ava-pure:host --cpu 1 --entry /bin/sh -- -c '
for c in 0 1 2 3 4 5 6 7 8 9; do
  awk -v c=$c "BEGIN { for (i = c * 10000 + 1; i <= (c + 1) * 10000; i++)
                         printf \"n,phase=train value=%d,step=%di\n\", i, i }" >&3
  sleep 0.4
done' >/dev/null
sleep 1.2
avad_kill9
avad_start --cpus 4
sleep 1.3
avad_kill9
avad_start --cpus 4
ava train wait many --timeout 60s >/dev/null
buckets=$(python3 - "$AVA_DATA/ava.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sid, ok = db.execute("select id, buckets_ok from metric_series where name = 'n'").fetchone()
out = [ok]
for level in (0, 1, 2):
    n, bad = db.execute("""select count(*), sum(first_step != (select min(step) from metric_points p
        where p.series_id = b.series_id and p.step >= b.first_step) or min_value != (select min(value)
        from metric_points p where p.series_id = b.series_id and p.step between b.first_step and
        b.last_step) or max_value != (select max(value) from metric_points p where p.series_id =
        b.series_id and p.step between b.first_step and b.last_step)) from metric_buckets b
        where series_id = ? and level = ?""", (sid, level)).fetchone()
    out += [n, bad]
print(*out)
PY
)
# checked before any query could rebuild them: kept at ingest, through the kill -9s
expect_eq "the series' buckets (64, 512, 4096 points) match its points" "$buckets" "1 1563 0 196 0 25 0"
res=$(api GET '/trainings/many/metrics/n?phase=train&max_points=50' | cut -d' ' -f2-)
expect_eq "all 100,000 points are stored" "$(echo "$res" | jget count)" "100000"
read -r total distinct < <(python3 - "$AVA_DATA/ava.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(*db.execute("select count(*), count(distinct step) from metric_points p join metric_series s"
                  " on s.id = p.series_id where s.name = 'n'").fetchone())
PY
)
expect_eq "each step exactly once after two kill -9 of avad" "$total/$distinct" "100000/100000"
expect_eq "downsampled to 50 points" "$(echo "$res" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["points"]))')" "50"
expect_eq "keeping the first point" "$(echo "$res" | jget points.0.step)" "1"
expect_eq "and the last" "$(echo "$res" | jget points.49.step)" "100000"
page=$(api GET '/trainings/many/metrics/n?phase=train&since_step=99990&limit=5' | cut -d' ' -f2-)
expect_eq "raw pages start after since_step" "$(echo "$page" | python3 -c 'import json,sys; print([p["step"] for p in json.load(sys.stdin)["points"]])')" "[99991, 99992, 99993, 99994, 99995]"

# a log parser and a user rule, a bad SDK line among good ones, the HTTP report endpoint
cat > "$E2E_DIR/entry.sh" <<'SH'
#!/bin/sh
echo "Epoch 1/1"
printf '10/10 [====] - 1s 10ms/step - loss: 0.5 - accuracy: 0.8 - val_loss: 0.4 - val_accuracy: 0.85\n'
echo "throughput 123.5 img/s"
printf 'garbage line\nacc2,phase=val value=0.5,step=3i\n' >&3
curl -s -H "Authorization: Bearer $AVA_REPORT_TOKEN" --data-binary \
  "$(printf 'ava_metric_training_loss,epoch=2,batch=40 value=0.25\nnot a line\n')" "$AVA_REPORT_URL"
echo
SH
chmod +x "$E2E_DIR/entry.sh"
ava train create parsed --image ava-pure:host --cpu 1 --entry "$E2E_DIR/entry.sh" >/dev/null
api POST /trainings '{"name":"parsed2","image":"ava-pure:host","cpus":1,"entry":"'"$E2E_DIR/entry.sh"'","metrics_parser":"keras","metrics":["throughput=throughput ([0-9.]+)"]}' >/dev/null
ava train wait parsed2 >/dev/null
ava train wait parsed >/dev/null
m=$(api GET /trainings/parsed2/metrics | cut -d' ' -f2-)
names=$(echo "$m" | python3 -c 'import json,sys; print(" ".join(sorted(s["name"]+"/"+s["phase"] for s in json.load(sys.stdin)["runs"][0]["series"])))')
expect_match "the keras parser found the curves" "$names" "accuracy/train.*accuracy/val.*loss/train.*loss/val"
expect_match "the user rule found its metric" "$names" "throughput/"
expect_match "a bad SDK line did not stop the next one" "$names" "acc2/val"
expect_eq "keras val accuracy" "$(api GET '/trainings/parsed2/metrics/accuracy?phase=val' | cut -d' ' -f2- | jget points.0.value)" "0.85"
log=$(ava train logs parsed2)
expect_match "the report endpoint answers like the original" "$log" '"code":0,"accepted":1'
expect_match "and names the bad line" "$log" '"line":2'
expect_eq "the reported loss is stored at its batch" "$(api GET '/trainings/parsed2/metrics/loss?phase=train&since_step=39' | cut -d' ' -f2- | jget points.0.step)" "40"
expect_match "without a parser no log metrics" "$(api GET /trainings/parsed/metrics | cut -d' ' -f2-)" '"acc2"'
run_id=$(python3 -c "import sqlite3; print(sqlite3.connect('$AVA_DATA/ava.db').execute(\"select r.id from runs r join trainings t on t.id=r.training_id where t.name='parsed2'\").fetchone()[0])")
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' --data-binary 'x value=1,step=1i' "$AVA_SERVER/v1/report/trainings/$run_id/metric")
expect_eq "a wrong report token: 401" "$code" "401"
out=$(api POST /trainings '{"name":"badrule","image":"ava-pure:host","cpus":1,"entry":"/bin/true","metrics":["x=no group"]}')
expect_match "a rule without a capture group is refused" "$out" "^400 .*metrics"

# the SDKs: Python (on the run's PYTHONPATH) and C (libava)
ava train create py --image ava-pure:host --cpu 1 --entry /usr/bin/python3 -- -c \
  'import ava_sdk
for i in range(10): ava_sdk.report("pyloss", i, 1.0 / (i + 1), phase="train", epoch=1)' >/dev/null
cat > "$E2E_DIR/rep.c" <<'C'
#include <ava/ava.h>
int main(void) {
    for (int i = 0; i < 1000; i++)
        ava_report("closs", i, i * 0.25, "phase=train,epoch=2");
    return 0;
}
C
gcc -I"$(dirname "$0")/../../include" "$E2E_DIR/rep.c" "$AVA_BUILD/src/sdk/libava.a" -pthread -o "$E2E_DIR/rep"
ava train create c --image ava-pure:host --cpu 1 --entry "$E2E_DIR/rep" >/dev/null
ava train wait py >/dev/null
ava train wait c >/dev/null
expect_eq "the Python SDK's points" "$(api GET '/trainings/py/metrics/pyloss?phase=train' | cut -d' ' -f2- | jget count)" "10"
expect_eq "the C SDK's points" "$(api GET '/trainings/c/metrics/closs?phase=train' | cut -d' ' -f2- | jget count)" "1000"
expect_eq "with their values" "$(api GET '/trainings/c/metrics/closs?phase=train&since_step=998' | cut -d' ' -f2- | jget points.0.value)" "249.75"

# the live stream follows a run and ends with it
ava train create live --image ava-pure:host --cpu 1 --entry /bin/sh -- -c \
  'for i in 1 2 3; do printf "live value=%d,step=%di\n" $i $i >&3; sleep 0.6; done' >/dev/null
stream=$(curl -s -N -H "Authorization: Bearer $AVA_TOKEN" "$AVA_SERVER/api/v1/trainings/live/metrics?follow=1" --max-time 20)
expect_eq "the stream sent every point" "$(echo "$stream" | grep -c '^event: point')" "3"
expect_match "and ended with the run" "$stream" 'event: end.*succeeded'
e2e_done
