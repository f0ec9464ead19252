#!/usr/bin/env bash
# daemon.sh: avad's settings (INI file + flags, bad values refused), the idle timeout of HTTP
# connections, and an installed tree (make install's layout under DESTDIR) that finds its
# shim and public images by itself.
. "$(dirname "$0")/lib.sh"

out=$("$AVAD_BIN" --cpus 0 2>&1); rc=$?
expect_eq "a bad flag value stops avad with status 2" "$rc" "2"
expect_match "and names the setting" "$out" "cpus"
printf '[avad]\nmax_runtime = 2h\nbogus = 1\n' > "$E2E_DIR/bad.ini"
out=$("$AVAD_BIN" --config "$E2E_DIR/bad.ini" 2>&1); rc=$?
expect_match "an unknown INI key is refused with its line" "$rc:$out" "^2:.*line 3.*bogus"

printf '[avad]\nmax_runtime = 2h\ncpus = 3\ngpus = 4,7\nhttp_timeout = 1s\n' > "$E2E_DIR/avad.ini"
avad_start --config "$E2E_DIR/avad.ini" --cpus 5
res=$(ava resources --json)
expect_eq "flags override the file" "$(echo "$res" | jget cpus.total)" "5"
expect_eq "the file's GPU list is used" "$(echo "$res" | jget gpus.1.index)" "7"
out=$(ava train create long --image ava-pure:host --cpu 1 --max-runtime 3h --entry /bin/true 2>&1)
expect_match "the file's ceiling applies" "$out" "limit of 2h"

# a client that opens a connection and sends half a request is cut off after the timeout
port=${AVA_SERVER##*:}
start=$(date +%s.%N)
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\n' >&3
timeout 10 cat <&3 >/dev/null
exec 3<&-
took=$(python3 -c "print($(date +%s.%N) - $start)")
expect_eq "an idle half-sent request is closed after the timeout (${took}s)" "$(python3 -c "print(0.9 <= $took < 4)")" "True"

# an installed tree under DESTDIR works from where it lies
dest="$E2E_DIR/stage"
meson install -C "$AVA_BUILD" --no-rebuild --quiet --destdir "$dest" >/dev/null 2>&1
avad_i=$(find "$dest" -path '*/bin/avad' | head -1)
expect_match "make install puts avad in bin/" "$avad_i" "/bin/avad$"
expect_match "and ava-shim in libexec/ava/" "$(find "$dest" -path '*/libexec/ava/ava-shim')" "ava-shim$"
"$avad_i" --data "$E2E_DIR/ivar" --listen 127.0.0.1:0 >"$E2E_DIR/iavad.log" 2>&1 &
ipid=$!
for _ in $(seq 100); do [ -s "$E2E_DIR/ivar/endpoint" ] && break; sleep 0.05; done
AVA_SERVER=$(cat "$E2E_DIR/ivar/endpoint") AVA_TOKEN=$(cat "$E2E_DIR/ivar/admin.token") \
    ava train create inst --image ava-pure:host --cpu 1 --entry /bin/true >/dev/null 2>&1
state_i=$(AVA_SERVER=$(cat "$E2E_DIR/ivar/endpoint") AVA_TOKEN=$(cat "$E2E_DIR/ivar/admin.token") ava train wait inst 2>&1)
expect_eq "the installed avad finds its shim and images" "$state_i" "succeeded"
kill "$ipid" 2>/dev/null
e2e_done
