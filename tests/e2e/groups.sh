#!/usr/bin/env bash
# groups.sh: tokens are required and stored hashed; users see their own group's trainings,
# logs and private images only (another group's get 404); admin-only routes.
. "$(dirname "$0")/lib.sh"
avad_start

expect_eq "the admin token file is private" "$(stat -c %a "$AVA_DATA/admin.token")" "600"
token=$(cat "$AVA_DATA/admin.token")
expect_eq "tokens are stored hashed" "$(cat "$AVA_DATA"/ava.db* | grep -c "$token")" "0"
expect_eq "no token: 401" "$(curl -s -o /dev/null -w '%{http_code}' "$AVA_SERVER/api/v1/trainings")" "401"
expect_eq "bad token: 401" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$AVA_SERVER/api/v1/trainings")" "401"

ava group create vision >/dev/null
bob=$(ava user create bob --group vision)
carol=$(ava user create carol --group default)
expect_match "user create prints the token" "$bob" "^ava_[0-9a-f]{40}$"
ava train create secret --image ava-pure:host --cpu 1 --entry /bin/sh -- -c 'echo classified' >/dev/null
ava train wait secret >/dev/null
cat > "$E2E_DIR/img.json" <<'J'
{"name": "private-img", "tag": "v1", "kind": "host", "description": "default's own"}
J
ava image add "$E2E_DIR/img.json" >/dev/null

AVA_TOKEN=$bob
expect_eq "another group's training: 404" "$(api GET /trainings/secret | cut -d' ' -f1)" "404"
expect_eq "another group's training by owner: 404" "$(api GET '/trainings/admin%2Fsecret' | cut -d' ' -f1)" "404"
expect_eq "another group's log: 404" "$(api GET '/trainings/secret/logs?owner=admin' | cut -d' ' -f1)" "404"
expect_eq "another group's stop: 404" "$(api POST '/trainings/secret/stop?owner=admin' | cut -d' ' -f1)" "404"
expect_eq "bob's list is empty" "$(ava train list --json | jget trainings)" "[]"
expect_eq "another group's private image: 404" "$(api GET /images/private-img:v1 | cut -d' ' -f1)" "404"
expect_eq "admin routes: 403" "$(api POST /groups '{"name":"x"}' | cut -d' ' -f1)" "403"
expect_eq "user creation: 403" "$(api POST /users '{"name":"x","group":"vision"}' | cut -d' ' -f1)" "403"
ava train create secret --image ava-pure:host --cpu 1 --entry /bin/true >/dev/null
expect_eq "names are unique per user, not global" "$(ava train wait secret)" "succeeded"
expect_eq "bob cannot use default's private image" "$(api POST /trainings '{"name":"p","image":"private-img:v1","cpus":1,"entry":"/bin/true"}' | cut -d' ' -f1)" "404"

AVA_TOKEN=$carol
expect_eq "a group-mate sees the training by owner/name" "$(ava train show admin/secret --json | jget owner)" "admin"
expect_match "and its log" "$(ava train logs admin/secret)" "classified"
expect_eq "a group-mate sees the private image" "$(api GET /images/private-img:v1 | cut -d' ' -f1)" "200"
expect_eq "whoami" "$(ava whoami --json | jget user)" "carol"
e2e_done
