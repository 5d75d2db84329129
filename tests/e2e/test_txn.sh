#!/usr/bin/env bash
# txn in etcdctl's stdin form: compares on value, version, create and mod revision; the success
# branch runs when every compare holds, the failure branch otherwise; both are atomic.
source "$(dirname "$0")/lib.sh"
e2e_init 32020
e2e_start_cluster 3

e2e_ctl 1 put /txn/a 1 >/dev/null
e2e_ctl 1 put /txn/b 2 >/dev/null

# Compares hold: the success branch runs (puts and a get, in order).
out=$(e2e_ctl 2 txn <<'TXN'
value("/txn/a") = "1"
version("/txn/b") = "1"

put /txn/a "10"
put /txn/c "30"
get /txn/b

put /txn/failed "yes"

TXN
)
expect_eq "$out" $'SUCCESS\n\nOK\n\nOK\n\n/txn/b\n2' "txn whose compares hold"
expect_eq "$(e2e_ctl 3 get /txn/a --print-value-only)" "10" "success branch put"
expect_eq "$(e2e_ctl 3 get /txn/c --print-value-only)" "30" "second success branch put"
expect_eq "$(e2e_ctl 3 get /txn/failed)" "" "failure branch did not run"

# One compare fails: the failure branch runs and nothing of the success branch happens.
out=$(e2e_ctl 3 txn <<'TXN'
value("/txn/a") = "10"
value("/txn/b") > "5"

put /txn/a "never"

put /txn/failed "yes"
del /txn/c

TXN
)
expect_eq "$out" $'FAILURE\n\nOK\n\n1' "txn with one compare false"
expect_eq "$(e2e_ctl 1 get /txn/a --print-value-only)" "10" "success branch did not run"
expect_eq "$(e2e_ctl 1 get /txn/failed --print-value-only)" "yes" "failure branch put"
expect_eq "$(e2e_ctl 1 get /txn/c)" "" "failure branch delete"

# Compare-and-swap on mod revision: only the first of two writers that read the same revision wins.
rev=$(e2e_ctl 1 get /txn/b -w json | e2e_json_field mod_revision)
cas() {
  printf 'mod("/txn/b") = "%s"\n\nput /txn/b "%s"\n\n\n' "$rev" "$1" | e2e_ctl "$2" txn | head -n 1
}
expect_eq "$(cas first 1)" "SUCCESS" "first compare-and-swap"
expect_eq "$(cas second 2)" "FAILURE" "second compare-and-swap on the same revision"
expect_eq "$(e2e_ctl 3 get /txn/b --print-value-only)" "first" "value after the two swaps"

# create revision 0 means "does not exist": create-if-absent.
create() {
  printf 'create("/txn/new") = "0"\n\nput /txn/new "%s"\n\n\n' "$1" | e2e_ctl 1 txn | head -n 1
}
expect_eq "$(create one)" "SUCCESS" "create-if-absent on an absent key"
expect_eq "$(create two)" "FAILURE" "create-if-absent on a present key"
expect_eq "$(e2e_ctl 2 get /txn/new --print-value-only)" "one" "create-if-absent kept the first"

# A range delete and a prefix get inside one txn.
out=$(printf 'version("/txn/a") > "0"\n\nget /txn/ --prefix --keys-only\ndel /txn/ --prefix\n\n\n' |
  e2e_ctl 2 txn)
expect_eq "$(head -n 1 <<<"$out")" "SUCCESS" "txn with prefix ops"
expect_contains "$out" $'/txn/a\n\n/txn/b\n\n/txn/failed' "prefix get inside txn"
expect_eq "$(e2e_ctl 1 get /txn/ --prefix)" "" "prefix delete inside txn"
e2e_log "ok"
