#!/usr/bin/env bash
# compact: reads and watches below the compacted revision fail with etcd's message; at and above
# it they work; compacting twice at the same revision fails.
source "$(dirname "$0")/lib.sh"
e2e_init 32180
e2e_start_cluster 3

revs=()
for i in 1 2 3 4 5; do
  e2e_ctl 1 put /c/k "v$i" >/dev/null
  revs+=("$(e2e_ctl 1 get /c/k -w json | e2e_json_field mod_revision)")
done
compact_rev=${revs[3]}
expect_eq "$(e2e_ctl 2 get /c/k --rev "${revs[1]}" --print-value-only)" "v2" "old revision before compaction"
expect_eq "$(e2e_ctl 2 compact "$compact_rev")" "compacted revision $compact_rev" "compact"

for i in 1 2 3; do
  expect_fails "get below the compacted revision on m$i" "required revision has been compacted" \
    e2e_ctl "$i" get /c/k --rev "${revs[1]}"
done
expect_eq "$(e2e_ctl 3 get /c/k --rev "$compact_rev" --print-value-only)" "v4" \
  "get at the compacted revision"
expect_eq "$(e2e_ctl 3 get /c/k --print-value-only)" "v5" "current value"
expect_fails "watch below the compacted revision" "required revision has been compacted" \
  e2e_ctl 1 watch /c/k --rev "${revs[0]}"
expect_fails "compact again at the same revision" "required revision has been compacted" \
  e2e_ctl 1 compact "$compact_rev"
expect_fails "compact a future revision" "future revision" e2e_ctl 1 compact 100000
e2e_log "ok"
