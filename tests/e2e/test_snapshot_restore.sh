#!/usr/bin/env bash
# snapshot restore (Ballot): `etcdctl snapshot save` from a running cluster, `ballot snapshot
# restore` into three new data directories, a new 3-member cluster started from them holds every
# key at the snapshot's revision, with the same HashKV as the source. A corrupt file is refused and
# leaves no directory; `ballot snapshot save` writes a file that restores too. etcd's own restore
# is covered by test_snapshot.sh, so this test skips etcd.
source "$(dirname "$0")/lib.sh"
e2e_init 32340
e2e_server_is_etcd && e2e_skip "Ballot's restore; etcd's is in test_snapshot.sh"
ballot=${E2E_SERVER%% *}
engine=raft
[[ $E2E_SERVER_ARGS =~ --engine[=\ ]([a-z]+) ]] && engine=${BASH_REMATCH[1]}
e2e_start_cluster 3

for i in $(seq 1 30); do e2e_ctl $((i % 3 + 1)) put "/restore/k$i" "v$i" >/dev/null; done
e2e_ctl 1 put /restore/k7 seven >/dev/null
e2e_ctl 1 del /restore/k30 >/dev/null
revision=$(e2e_ctl 1 get /restore/k1 -w json | e2e_json_field revision)
hash_of() { e2e_ctl "$1" endpoint hashkv --rev="$revision" | awk -F', ' '{ print $2 }'; }
source_hash=$(hash_of 1)
file=$E2E_DIR/backup.db
out=$(e2e_ctl 1 snapshot save "$file" 2>&1) || e2e_fail "snapshot save: $(tail -n 1 <<<"$out")"
out=$("$ballot" snapshot save "$E2E_DIR/ballot-save.db" --endpoints="$(e2e_endpoint 2)" 2>&1) ||
  e2e_fail "ballot snapshot save: $out"
expect_contains "$out" "Snapshot saved at $E2E_DIR/ballot-save.db" "ballot snapshot save"
for i in 1 2 3; do e2e_kill "$i"; done

cluster="m4=$(e2e_peer_url 4),m5=$(e2e_peer_url 5),m6=$(e2e_peer_url 6)"
restore() {  # restore FILE I: member I's data directory from FILE
  "$ballot" snapshot restore "$1" --name "m$2" --data-dir "$E2E_DIR/m$2.data" \
    --initial-cluster "$cluster" --initial-cluster-token "$E2E_CLUSTER_TOKEN" \
    --initial-advertise-peer-urls "$(e2e_peer_url "$2")" --engine "$engine"
}

# A corrupt and a truncated file are refused; nothing is left behind.
cp "$file" "$E2E_DIR/corrupt.db"
printf 'X' | dd of="$E2E_DIR/corrupt.db" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_fails "restore of a corrupt file" "SHA-256 mismatch" restore "$E2E_DIR/corrupt.db" 4
head -c 1000 "$file" >"$E2E_DIR/truncated.db"
expect_fails "restore of a truncated file" "truncated" restore "$E2E_DIR/truncated.db" 4
[[ ! -e $E2E_DIR/m4.data ]] || e2e_fail "a failed restore left $E2E_DIR/m4.data"
ls "$E2E_DIR" | grep -q restore- && e2e_fail "a failed restore left a temporary directory"

for i in 4 5; do restore "$file" "$i" >"$E2E_DIR/restore$i.log" 2>&1 || e2e_fail "restore m$i: $(cat "$E2E_DIR/restore$i.log")"; done
restore "$E2E_DIR/ballot-save.db" 6 >"$E2E_DIR/restore6.log" 2>&1 ||
  e2e_fail "restore m6 from ballot's file: $(cat "$E2E_DIR/restore6.log")"
expect_fails "restore into a non-empty data dir" "not empty" restore "$file" 4

for i in 4 5 6; do e2e_start_member "$i" new "$cluster"; done
e2e_wait_healthy 4 5 6
for i in 4 5 6; do
  expect_eq "$(e2e_ctl "$i" get /restore/ --prefix --keys-only | grep -c .)" "29" "keys on m$i"
  expect_eq "$(e2e_ctl "$i" get /restore/k7 --print-value-only)" "seven" "a value on m$i"
  expect_eq "$(e2e_ctl "$i" get /restore/k1 -w json | e2e_json_field revision)" "$revision" \
    "the revision on m$i"
  expect_eq "$(hash_of "$i")" "$source_hash" "HashKV at revision $revision on m$i"
done
expect_eq "$(e2e_ctl_all member list | awk -F', ' '{ print $3 }' | sort | tr '\n' ' ')" "m4 m5 m6 " \
  "the new cluster's members"
e2e_ctl 5 put /restore/new yes >/dev/null
expect_eq "$(e2e_ctl 4 get /restore/new -w json | e2e_json_field revision)" "$((revision + 1))" \
  "the first write's revision continues the snapshot's"
e2e_log "ok"
