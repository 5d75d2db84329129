#!/usr/bin/env bash
# A member that was down while far more than --snapshot-count entries were committed catches up
# after a restart from its data directory. With etcd the leader keeps 5000 entries after each
# snapshot, so the test commits about 5700 entries while the member is down, with --snapshot-count
# 500: the entries the member lacks are gone from the leader's log, and it must be sent a snapshot
# (on etcd the test also checks the member's log says so; for another server set
# E2E_SNAPSHOT_LOG_PATTERN to the line it logs when it installs a snapshot).
#
# Entries are made cheaply: 44 txns of 128 puts create 5632 keys under /src/P/ (P = 0..7), then 8
# concurrent `etcdctl make-mirror` processes copy them, one put each, to /dst/P/ (5632 entries;
# concurrent proposals share the leader's disk syncs).
source "$(dirname "$0")/lib.sh"
E2E_SNAPSHOT_COUNT=500
e2e_init 32220
e2e_start_cluster 3

batches=44 batch_ops=128 mirrors=8
keys=$((batches * batch_ops))
count() { e2e_ctl_all get "$1" --prefix --limit 1 -w json | e2e_json_field count; }

leader=$(e2e_leader)
behind=$((leader % 3 + 1))
e2e_kill "$behind"

batch() {
  local t=$1 j
  { echo; for ((j = 0; j < batch_ops; j++)); do echo "put /src/$((t % mirrors))/k$((t * batch_ops + j)) v$j"; done; echo; echo; } |
    e2e_ctl_all txn --command-timeout=20s >/dev/null
}
# Four txns at a time; each is one entry, so this part is about keys, not entries.
for ((t = 0; t < batches; t += 4)); do
  jobs=()
  for ((u = t; u < t + 4 && u < batches; u++)); do batch "$u" & jobs+=($!); done
  for job in "${jobs[@]}"; do wait "$job" || e2e_fail "a txn of $batch_ops puts failed"; done
done
expect_eq "$(count /src/)" "$keys" "source keys"
e2e_log "$keys source keys written"

# make-mirror copies the keys that exist when it starts with one put each (the events it watches
# afterwards it copies one txn per revision, which would not multiply entries). It takes a single
# destination endpoint.
mirror_pids=()
for ((p = 0; p < mirrors; p++)); do
  e2e_bg "mirror$p" e2e_ctl "$leader" make-mirror --prefix "/src/$p/" --dest-prefix "/dst/$p/" \
    "$(e2e_endpoint "$leader")"
  mirror_pids+=("$E2E_LAST_BG")
done
mirrored() { [[ $(count /dst/) -ge $keys ]]; }
e2e_wait_until 90 "make-mirror copied $keys keys" mirrored
for pid in "${mirror_pids[@]}"; do e2e_kill_bg KILL "$pid"; done
e2e_log "$keys keys mirrored, one entry each"
e2e_ctl_all put /dst/last yes >/dev/null

e2e_restart "$behind"
e2e_wait_converged /dst/
expect_eq "$(e2e_ctl "$behind" get /dst/ --prefix --consistency=s --limit 1 -w json | e2e_json_field count)" \
  "$((keys + 1))" "keys on the restarted member"
pattern=${E2E_SNAPSHOT_LOG_PATTERN:-}
e2e_server_is_etcd && pattern="raft applied incoming snapshot at index"
if [[ -n $pattern ]]; then
  grep -q "$pattern" "$E2E_DIR/m$behind.log" ||
    e2e_fail "m$behind's log has no [$pattern]: it did not catch up by snapshot"
  e2e_log "ok (m$behind caught up by snapshot)"
else
  e2e_log "ok (m$behind caught up; set E2E_SNAPSHOT_LOG_PATTERN to check it was by snapshot)"
fi
