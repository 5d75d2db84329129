#!/usr/bin/env bash
# member update: a member's peer URLs change through the cluster; the member, restarted on the new
# peer URL, catches up and takes writes, and the cluster works throughout. Errors as etcd's.
source "$(dirname "$0")/lib.sh"
e2e_init 32320
e2e_start_cluster 3

e2e_ctl 1 put /mu/before yes >/dev/null
# Member 3 moves to member 9's peer port (nothing listens there).
new_url=$(e2e_peer_url 9)
id3=$(e2e_member_hex_id 3)
[[ -n $id3 ]] || e2e_fail "m3 is not in the member list"
e2e_kill 3
# If m3 led, the update needs the next leader (a follower forwards to the leader it knows).
e2e_leader 3 >/dev/null
out=$(e2e_ctl_all member update "$id3" --peer-urls="$new_url" 2>&1) ||
  e2e_fail "member update: $out"
# etcdctl prints ids with %16x: an id below 2^60 is padded with spaces.
expect_contains "$(tr -s ' ' <<<"$out")" "Member $id3 updated in cluster" "member update output"
line=$(e2e_ctl_all member list | awk -F', ' -v id="$id3" '$1 == id')
expect_contains "$line" ", $new_url, " "m3's new peer URL in the member list"
e2e_wait_until "$E2E_WAIT_S" "a write with m3 away" e2e_ctl_all put /mu/during ok

# Restart m3 listening on the new peer URL (its data directory keeps its identity). The --initial-*
# flags stay as at the first start: Ballot checks them against the data directory on every start
# (etcd ignores them once it has a data directory).
read -r -a server_cmd <<<"$E2E_SERVER"
read -r -a server_args <<<"$E2E_SERVER_ARGS"
echo "=== $(date +%H:%M:%S.%N) start m3 on $new_url" >>"$E2E_DIR/m3.log"
"${server_cmd[@]}" --name m3 --data-dir "$E2E_DIR/m3.data" \
  --listen-client-urls "$(e2e_client_url 3)" --advertise-client-urls "$(e2e_client_url 3)" \
  --listen-peer-urls "$new_url" --initial-advertise-peer-urls "$(e2e_peer_url 3)" \
  --initial-cluster "${E2E_CLUSTER[3]}" --initial-cluster-state new \
  --initial-cluster-token "$E2E_CLUSTER_TOKEN" \
  --heartbeat-interval "$E2E_HEARTBEAT_MS" --election-timeout "$E2E_ELECTION_MS" \
  "${server_args[@]}" >>"$E2E_DIR/m3.log" 2>&1 &
E2E_PID[3]=$!
e2e_wait_healthy 3
expect_eq "$(e2e_ctl 3 get /mu/during --print-value-only)" "ok" "m3 caught up after the move"
e2e_ctl 3 put /mu/after three >/dev/null
for i in 1 2; do
  expect_eq "$(e2e_ctl "$i" get /mu/after --print-value-only)" "three" "m$i reads m3's write"
done

# Errors, as etcd's.
expect_fails "update of an unknown member" "member not found" \
  e2e_ctl_all member update 1234abcd --peer-urls=http://127.0.0.1:1
expect_fails "a peer URL of another member" "Peer URLs already exists" \
  e2e_ctl_all member update "$id3" --peer-urls="$(e2e_peer_url 1)"
e2e_log "ok"
