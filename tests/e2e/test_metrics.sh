#!/usr/bin/env bash
# --listen-metrics-urls: every member serves Prometheus text on /metrics and etcd's JSON on
# /health. With a leader: has_leader is 1 on all three, is_leader on exactly one; puts advance
# proposals_committed and the WAL fsync histogram; an unknown path is 404. After kill -9 of the
# leader, the survivors elect a new one and their leader_changes_seen_total grows.
source "$(dirname "$0")/lib.sh"
e2e_init 32300

metrics_port() { echo $((E2E_PORT_BASE + 11 + $1)); } # m1..m3: base+12..base+14
metrics_url() { echo "http://127.0.0.1:$(metrics_port "$1")"; }

# http_get I PATH: the body of GET PATH on member I's metrics listener (fails on a non-2xx).
http_get() { curl -sf --max-time 5 "$(metrics_url "$1")$2"; }
# http_status I PATH [METHOD]: the HTTP status code only.
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "${3:-GET}" "$(metrics_url "$1")$2"; }
# metric I NAME: the value of the unlabelled sample NAME on member I ("" if absent).
metric() { http_get "$1" /metrics | awk -v n="$2" '$1 == n { print $2; exit }'; }
# The value rounded to an integer (a server may print "12" or "12.0"). A missing sample reads as
# 0, which every check below rejects (each expects 1 or growth).
metric_int() { printf '%.0f' "$(metric "$1" "$2")"; }
has_leader_on() { [[ $(metric_int "$1" etcd_server_has_leader) == 1 ]]; }

command -v curl >/dev/null || e2e_skip "curl is not installed"

cluster="m1=$(e2e_peer_url 1),m2=$(e2e_peer_url 2),m3=$(e2e_peer_url 3)"
for i in 1 2 3; do e2e_start_member "$i" new "$cluster" --listen-metrics-urls "$(metrics_url "$i")"; done
e2e_wait_healthy 1 2 3
for i in 1 2 3; do e2e_wait_until "$E2E_WAIT_S" "m$i has a leader (metrics)" has_leader_on "$i"; done

# /health as etcd answers it.
for i in 1 2 3; do
  expect_eq "$(http_status "$i" /health)" 200 "m$i /health status"
  expect_eq "$(http_get "$i" /health)" '{"health":"true"}' "m$i /health body"
done
expect_eq "$(http_status 1 /no-such-path)" 404 "unknown path"

# One leader, seen by everyone.
leaders=0
for i in 1 2 3; do
  expect_eq "$(metric_int "$i" etcd_server_has_leader)" 1 "m$i etcd_server_has_leader"
  leaders=$((leaders + $(metric_int "$i" etcd_server_is_leader)))
done
expect_eq "$leaders" 1 "members with etcd_server_is_leader 1"
leader=$(e2e_leader)
expect_eq "$(metric_int "$leader" etcd_server_is_leader)" 1 "the leader m$leader's etcd_server_is_leader"

# Writes advance the proposal counters and the WAL fsync histogram on every member.
declare -A committed0 fsyncs0
for i in 1 2 3; do
  committed0[$i]=$(metric_int "$i" etcd_server_proposals_committed_total)
  fsyncs0[$i]=$(metric_int "$i" etcd_disk_wal_fsync_duration_seconds_count)
done
for k in $(seq 1 10); do e2e_ctl $((k % 3 + 1)) put "/m/k$k" "v$k" >/dev/null; done
e2e_wait_converged /m/
for i in 1 2 3; do
  committed=$(metric_int "$i" etcd_server_proposals_committed_total)
  applied=$(metric_int "$i" etcd_server_proposals_applied_total)
  fsyncs=$(metric_int "$i" etcd_disk_wal_fsync_duration_seconds_count)
  ((committed >= committed0[$i] + 10)) || e2e_fail "m$i proposals_committed $committed < ${committed0[$i]} + 10"
  ((applied >= committed0[$i] + 10)) || e2e_fail "m$i proposals_applied $applied < ${committed0[$i]} + 10"
  ((fsyncs > fsyncs0[$i])) || e2e_fail "m$i WAL fsync count did not grow ($fsyncs)"
  expect_contains "$(http_get "$i" /metrics)" "# TYPE etcd_disk_wal_fsync_duration_seconds histogram" \
    "m$i fsync histogram type"
done
if ! e2e_server_is_etcd; then
  engine=raft
  [[ $E2E_SERVER_ARGS == *multipaxos* ]] && engine=multipaxos
  expect_eq "$(metric_int 1 "ballot_engine_info{engine=\"$engine\"}")" 1 "ballot_engine_info"
fi

# kill -9 of the leader: the survivors see a new leader.
declare -A changes0
for i in 1 2 3; do changes0[$i]=$(metric_int "$i" etcd_server_leader_changes_seen_total); done
e2e_kill "$leader"
new=$(e2e_leader "$leader")
[[ $new != "$leader" ]] || e2e_fail "the killed member is still the leader"
for i in $(e2e_members); do
  e2e_wait_until "$E2E_WAIT_S" "m$i has a leader again" has_leader_on "$i"
  changes=$(metric_int "$i" etcd_server_leader_changes_seen_total)
  ((changes > changes0[$i])) ||
    e2e_fail "m$i leader_changes_seen_total did not grow after the leader's kill ($changes)"
done
expect_eq "$(metric_int "$new" etcd_server_is_leader)" 1 "the new leader m$new's etcd_server_is_leader"
e2e_log "ok (leader m$leader killed, m$new leads; metrics on ports $(metrics_port 1)-$(metrics_port 3))"
