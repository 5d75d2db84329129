#!/usr/bin/env bash
# snapshot save: the client streams a snapshot of one member's key space into a file.
# On etcd the file is a bbolt database: `snapshot status` reads its revision and key count, and
# `snapshot restore` turns it into a data directory that a new single-member cluster starts from
# with every key. Ballot's snapshot is its own format (a RocksDB checkpoint), which etcdctl cannot
# read offline, so against Ballot this test only checks that the file is non-empty.
source "$(dirname "$0")/lib.sh"
e2e_init 32160
e2e_start_cluster 3

for i in $(seq 1 20); do e2e_ctl $((i % 3 + 1)) put "/snap/k$i" "v$i" >/dev/null; done
revision=$(e2e_ctl 1 get /snap/k1 -w json | e2e_json_field revision)
file=$E2E_DIR/backup.db
out=$(e2e_ctl 2 snapshot save "$file" 2>&1) || e2e_fail "snapshot save failed: $(tail -n 1 <<<"$out")"
expect_contains "$out" "Snapshot saved at $file" "snapshot save"
[[ -s $file ]] || e2e_fail "the snapshot file is empty"

if ! e2e_server_is_etcd; then
  e2e_log "ok (non-etcd server: checked only that the snapshot is non-empty, $(stat -c %s "$file") bytes)"
  exit 0
fi
status=$("$E2E_CTL" snapshot status "$file" -w json)
expect_eq "$(e2e_json_field revision <<<"$status")" "$revision" "the snapshot's revision"
total_keys=$(e2e_json_field totalKey <<<"$status")
((total_keys >= 20)) || e2e_fail "the snapshot holds $total_keys keys, fewer than the 20 written"

# Restore into member 9's data directory and start it alone as a new cluster.
restored_cluster="m9=$(e2e_peer_url 9)"
"$E2E_CTL" snapshot restore "$file" --name m9 --data-dir "$E2E_DIR/m9.data" \
  --initial-cluster "$restored_cluster" --initial-advertise-peer-urls "$(e2e_peer_url 9)" \
  --initial-cluster-token restored >"$E2E_DIR/restore.log" 2>&1 || e2e_fail "snapshot restore failed"
e2e_start_member 9 new "$restored_cluster"
e2e_wait_healthy 9
expect_eq "$(e2e_ctl 9 get /snap/ --prefix --keys-only | grep -c .)" "20" "keys in the restored member"
expect_eq "$(e2e_ctl 9 get /snap/k7 --print-value-only)" "v7" "a value in the restored member"
e2e_log "ok"
