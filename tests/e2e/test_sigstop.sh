#!/usr/bin/env bash
# A SIGSTOP'd leader (alive but silent, like a long GC pause) is replaced; writes continue; after
# SIGCONT it learns of the new term, follows the new leader and catches up.
source "$(dirname "$0")/lib.sh"
e2e_init 32240
e2e_start_cluster 3

e2e_ctl 1 put /s/before 1 >/dev/null
old=$(e2e_leader)
e2e_stop "$old"
new=$(e2e_leader "$old")
[[ $new != "$old" ]] || e2e_fail "no new leader"
survivors=()
for i in $(e2e_members); do ((i == old)) || survivors+=("$(e2e_endpoint "$i")"); done
ctl_survivors() {
  local IFS=,
  "$E2E_CTL" --endpoints="${survivors[*]}" --dial-timeout=2s --command-timeout=5s "$@"
}
for i in $(seq 1 10); do ctl_survivors put "/s/during$i" "$i" >/dev/null; done

e2e_cont "$old"
new_id=$(e2e_member_id "$new")
follows_new() {
  [[ $(e2e_ctl "$old" endpoint status -w json | e2e_json_field leader) == "$new_id" ]]
}
e2e_wait_until "$E2E_WAIT_S" "m$old follows the new leader m$new" follows_new
e2e_is_leader "$old" && e2e_fail "m$old still says it is the leader"
e2e_wait_converged /s/
expect_eq "$(e2e_ctl "$old" get /s/during10 --print-value-only)" "10" "a write made while m$old was stopped"
e2e_ctl "$old" put /s/after yes >/dev/null
expect_eq "$(e2e_ctl "$new" get /s/after --print-value-only)" "yes" "a write through the resumed member"
e2e_log "ok (m$old stopped, m$new took over)"
