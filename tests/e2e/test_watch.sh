#!/usr/bin/env bash
# watch: a background `watch --prefix` sees every put and delete in order; a watch from an old
# revision replays history; --prev-kv carries the previous value; a watch on one member sees writes
# made through another.
source "$(dirname "$0")/lib.sh"
e2e_init 32040
e2e_start_cluster 3

e2e_ctl 1 put /w/k0 v0 >/dev/null
start_rev=$(e2e_ctl 1 get /w/k0 -w json | e2e_json_field revision)

# Start from the next revision, so that no put can slip in before the watch is registered.
e2e_bg watch_live e2e_ctl 2 watch /w/ --prefix --rev $((start_rev + 1))
live_log=$E2E_DIR/watch_live.log
e2e_ctl 1 put /x/outside no >/dev/null # outside the prefix: must not appear
expected=""
for i in $(seq 1 15); do
  e2e_ctl $((i % 3 + 1)) put "/w/k$i" "v$i" >/dev/null
  expected+="PUT"$'\n'"/w/k$i"$'\n'"v$i"$'\n'
done
e2e_ctl 3 del /w/k1 >/dev/null
expected+=$'DELETE\n/w/k1\n'
e2e_wait_until 10 "the watcher saw 15 puts and a delete" e2e_file_has_lines "$live_log" 47
expect_eq "$(cat "$live_log")" "${expected%$'\n'}" "live watch events, in order"

# History: a watch from start_rev replays k0's put and then everything after it.
e2e_bg watch_history e2e_ctl 3 watch /w/k --prefix --rev "$start_rev"
e2e_wait_until 10 "the history watcher caught up" e2e_file_has_lines "$E2E_DIR/watch_history.log" 50
expect_eq "$(cat "$E2E_DIR/watch_history.log")" $'PUT\n/w/k0\nv0\n'"${expected%$'\n'}" \
  "watch from an old revision replays history in order"

# --prev-kv: the previous pair precedes the new one.
rev=$(e2e_ctl 1 get /w/k2 -w json | e2e_json_field revision)
e2e_bg watch_prev e2e_ctl 1 watch /w/k2 --prev-kv --rev $((rev + 1))
e2e_ctl 2 put /w/k2 v2b >/dev/null
e2e_wait_until 10 "the prev-kv watcher saw the overwrite" e2e_file_has_lines "$E2E_DIR/watch_prev.log" 5
expect_eq "$(cat "$E2E_DIR/watch_prev.log")" $'PUT\n/w/k2\nv2\n/w/k2\nv2b' "watch --prev-kv"
e2e_log "ok"
