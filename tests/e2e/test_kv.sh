#!/usr/bin/env bash
# put / get / del: prefix, from-key, limit, rev, prev-kv, keys-only, count, serializable reads.
source "$(dirname "$0")/lib.sh"
e2e_init 32000
e2e_start_cluster 3

expect_eq "$(e2e_ctl 1 put /kv/a 1)" "OK" "put"
e2e_ctl 2 put /kv/b 2 >/dev/null
e2e_ctl 3 put /kv/c 3 >/dev/null
e2e_ctl 1 put /other x >/dev/null

# A write through any member is visible to a linearizable read on any other.
expect_eq "$(e2e_ctl 3 get /kv/a)" $'/kv/a\n1' "get of a key written through another member"
expect_eq "$(e2e_ctl 2 get /kv/a --print-value-only)" "1" "get --print-value-only"
expect_eq "$(e2e_ctl 1 get /kv/missing)" "" "get of a missing key prints nothing"
expect_eq "$(e2e_ctl 1 get /kv/ --prefix --keys-only | grep -v '^$')" $'/kv/a\n/kv/b\n/kv/c' "get --prefix --keys-only"
expect_eq "$(e2e_ctl 1 get /kv/a /kv/c --keys-only | grep -v '^$')" $'/kv/a\n/kv/b' "get KEY RANGE_END is half-open"
expect_eq "$(e2e_ctl 1 get /kv/b --from-key --keys-only | grep -v '^$')" $'/kv/b\n/kv/c\n/other' "get --from-key"
expect_eq "$(e2e_ctl 1 get /kv/ --prefix --limit 2 --keys-only | grep -v '^$')" $'/kv/a\n/kv/b' "get --limit"
expect_eq "$(e2e_ctl 1 get /kv/ --prefix --limit 1 -w json | e2e_json_field count)" "3" "count of a limited prefix get"

# Revisions: overwrite /kv/a and read the old value at its old revision.
rev_a1=$(e2e_ctl 1 get /kv/a -w json | e2e_json_field mod_revision)
expect_eq "$(e2e_ctl 2 put /kv/a 1b --prev-kv)" $'OK\n/kv/a\n1' "put --prev-kv prints the old pair"
expect_eq "$(e2e_ctl 3 get /kv/a --rev "$rev_a1" --print-value-only)" "1" "get --rev at the old revision"
expect_eq "$(e2e_ctl 3 get /kv/a --print-value-only)" "1b" "get after overwrite"
version=$(e2e_ctl 1 get /kv/a -w json | e2e_json_field version)
expect_eq "$version" "2" "version after two puts"
header_rev=$(e2e_ctl 1 get /kv/a -w json | e2e_json_field revision)
mod_rev=$(e2e_ctl 1 get /kv/a -w json | e2e_json_field mod_revision)
expect_eq "$mod_rev" "$header_rev" "the last write's mod_revision is the store's revision"

# A serializable read from each member converges on the same answer.
for i in 1 2 3; do
  e2e_wait_until 5 "m$i applied the overwrite" \
    bash -c "[[ \$($E2E_CTL --endpoints=$(e2e_endpoint "$i") get /kv/a --print-value-only --consistency=s) == 1b ]]"
done

# Deletes: one key with --prev-kv, then a prefix.
expect_eq "$(e2e_ctl 1 del /kv/a --prev-kv)" $'1\n/kv/a\n1b' "del --prev-kv"
expect_eq "$(e2e_ctl 1 del /kv/missing)" "0" "del of a missing key deletes 0"
expect_eq "$(e2e_ctl 2 del /kv/ --prefix)" "2" "del --prefix"
expect_eq "$(e2e_ctl 3 get /kv/ --prefix)" "" "nothing left under the prefix"
expect_eq "$(e2e_ctl 3 get /other --print-value-only)" "x" "a key outside the prefix survives"

# The deleted value is still readable at a revision before the delete.
expect_eq "$(e2e_ctl 3 get /kv/a --rev "$rev_a1" --print-value-only)" "1" "get --rev after delete"
expect_fails "get --rev in the future" "future revision" e2e_ctl 1 get /kv/a --rev 100000
e2e_log "ok"
