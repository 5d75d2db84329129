// What the `ballot` client commands print, in etcdctl 3.4's formats, so that scripts written for
// etcdctl's output read ours unchanged. Every function returns the whole text, newlines included.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "kv.pb.h"
#include "rpc.pb.h"

namespace ballot::client {

// Go-style durations as etcdctl's flags take them: "5s", "500ms", "1m30s", "1.5s", "2h".
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Splits "a,b,c" into endpoints; empty items are an error.
Result<std::vector<std::string>> SplitEndpoints(std::string_view list);

// "simple" output.
struct GetFormat {
  bool print_value_only = false;
};
std::string FormatKeyValue(const mvccpb::KeyValue& kv, bool value_only = false);
std::string FormatGet(const etcdserverpb::RangeResponse& response, GetFormat format = {});
std::string FormatPut(const etcdserverpb::PutResponse& response);
std::string FormatDelete(const etcdserverpb::DeleteRangeResponse& response);
std::string FormatTxn(const etcdserverpb::TxnResponse& response);
std::string FormatWatchEvent(const mvccpb::Event& event);

// JSON as etcdctl -w json prints it: field names of etcd's Go structs, zero values left out,
// byte strings in base64.
std::string FormatGetJson(const etcdserverpb::RangeResponse& response);

// Leases ("lease 694d7b0d0b2a1c0a granted with TTL(60s)", ...).
std::string FormatLeaseId(int64_t id);  // %016x
std::string FormatLeaseGrant(const etcdserverpb::LeaseGrantResponse& response);
std::string FormatLeaseRevoke(int64_t id);
std::string FormatLeaseKeepAlive(const etcdserverpb::LeaseKeepAliveResponse& response);
std::string FormatLeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& response);
std::string FormatLeaseList(const etcdserverpb::LeaseLeasesResponse& response);

// Members.
std::string FormatMemberList(const etcdserverpb::MemberListResponse& response);
// "Member <id> added to cluster <id>" and the ETCD_* lines to start the new member with.
std::string FormatMemberAdd(const etcdserverpb::MemberAddResponse& response, std::string_view name);

// Endpoint status: one row per endpoint; an endpoint that did not answer has an error instead.
struct EndpointStatus {
  std::string endpoint;
  Status error;  // OK when `status` holds the answer
  etcdserverpb::StatusResponse status;
};
std::string FormatStatusSimple(const std::vector<EndpointStatus>& rows);
std::string FormatStatusTable(const std::vector<EndpointStatus>& rows);
std::string FormatStatusJson(const std::vector<EndpointStatus>& rows);

// Sizes the way etcdctl prints them (go-humanize, powers of 1000): "20 kB", "1.2 MB", "7 B".
std::string HumanBytes(uint64_t bytes);

}  // namespace ballot::client
