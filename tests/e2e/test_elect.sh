#!/usr/bin/env bash
# elect (etcdctl elect): exactly one leader among campaigners, an observer (--listen) sees the
# leader's proposal, and when the leader resigns (SIGTERM) the next campaigner takes over and the
# observer sees the handover.
source "$(dirname "$0")/lib.sh"
e2e_init 32100
e2e_start_cluster 3

log() { echo "$E2E_DIR/$1.log"; }
# Output of a winning campaigner and of the observer: the leader key, then its proposal.
e2e_bg campaign_A e2e_ctl 1 elect /el/E propA
pid_A=$E2E_LAST_BG
e2e_wait_until 10 "A won the election" e2e_file_has_lines "$(log campaign_A)" 2
key_A=$(head -n 1 "$(log campaign_A)")
[[ $key_A == /el/E/* ]] || e2e_fail "A's leader key [$key_A] is not under /el/E/"
expect_eq "$(sed -n 2p "$(log campaign_A)")" "propA" "A prints its proposal once elected"

e2e_bg observer e2e_ctl 3 elect --listen /el/E
e2e_wait_until 10 "the observer saw A" e2e_file_has_lines "$(log observer)" 2
expect_eq "$(cat "$(log observer)")" "$key_A"$'\npropA' "the observer sees the current leader"

e2e_bg campaign_B e2e_ctl 2 elect /el/E propB
pid_B=$E2E_LAST_BG
has_two_candidates() { [[ $(e2e_ctl 1 get /el/E/ --prefix --keys-only | grep -c .) -eq 2 ]]; }
e2e_wait_until 10 "B is campaigning" has_two_candidates
sleep 0.5
expect_eq "$(cat "$(log campaign_B)")" "" "B is not leader while A is"
expect_eq "$(e2e_ctl 2 get "$key_A" --print-value-only)" "propA" "A's key holds its proposal"

# A resigns (etcdctl elect resigns on SIGTERM): B takes over, the observer sees it.
e2e_kill_bg TERM "$pid_A"
e2e_wait_until 10 "B won after A resigned" e2e_file_has_lines "$(log campaign_B)" 2
key_B=$(head -n 1 "$(log campaign_B)")
expect_eq "$(sed -n 2p "$(log campaign_B)")" "propB" "B prints its proposal once elected"
[[ $key_B != "$key_A" ]] || e2e_fail "B reused A's key"
e2e_wait_until 10 "the observer saw B" e2e_file_has_lines "$(log observer)" 4
expect_eq "$(sed -n 3,4p "$(log observer)")" "$key_B"$'\npropB' "the observer sees the handover"
expect_eq "$(e2e_ctl 1 get "$key_A")" "" "A's key is gone after it resigned"
e2e_kill_bg TERM "$pid_B"
e2e_log "ok"
