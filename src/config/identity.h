// Cluster and member ids, derived deterministically from the configuration exactly as etcd does
// (etcdserver/api/membership: computeMemberId and genID), so that a Ballot cluster started with
// etcd's flags has the ids etcd would give it:
//   member id  = first 8 bytes (big-endian) of SHA-1(sorted peer URLs concatenated + token)
//   cluster id = first 8 bytes (big-endian) of SHA-1(sorted member ids, 8 bytes big-endian each)
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/serve_config.h"

namespace ballot::config {

// SHA-1 (FIPS 180-4), here only to reproduce etcd's ids; not used for security.
std::array<uint8_t, 20> Sha1(std::string_view data);

uint64_t ComputeMemberId(const std::vector<Url>& peer_urls, std::string_view cluster_token);
uint64_t ComputeClusterId(std::vector<uint64_t> member_ids);

// "8e9e05c52164694d": ids as etcd prints them.
std::string IdToHex(uint64_t id);

struct MemberIdentity {
  std::string name;
  uint64_t id = 0;
  std::vector<Url> peer_urls;
};

struct InitialMembershipInfo {
  std::vector<MemberIdentity> members;  // In --initial-cluster order.
  uint64_t cluster_id = 0;
  uint64_t self_id = 0;
};

// From a resolved config (Resolve()). FailedPrecondition if it is not resolved; InvalidArgument if
// two members' ids collide (possible only with a hash collision).
Result<InitialMembershipInfo> InitialMembership(const ServeConfig& config);

}  // namespace ballot::config
