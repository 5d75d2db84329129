// etcd's server errors (api/v3rpc/rpctypes/error.go), with etcd's gRPC codes and messages, so
// that clients (etcdctl, clientv3) react to them as they do with etcd.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace ballot::server {

inline constexpr std::string_view kErrNoLeader = "etcdserver: no leader";
inline constexpr std::string_view kErrNotLeader = "etcdserver: not leader";
inline constexpr std::string_view kErrTimeout = "etcdserver: request timed out";
inline constexpr std::string_view kErrStopped = "etcdserver: server stopped";
inline constexpr std::string_view kErrRequestTooLarge = "etcdserver: request is too large";
inline constexpr std::string_view kErrTooManyRequests = "etcdserver: too many requests";
inline constexpr std::string_view kErrMemberNotFound = "etcdserver: member not found";
inline constexpr std::string_view kErrPeerUrlExists = "etcdserver: Peer URLs already exists";
inline constexpr std::string_view kErrMemberNotLearner =
    "etcdserver: can only promote a learner member";
inline constexpr std::string_view kErrUnhealthy = "etcdserver: unhealthy cluster";
inline constexpr std::string_view kErrNoSpace = "etcdserver: mvcc: database space exceeded";
inline constexpr std::string_view kErrLeaseTtlTooLarge = "etcdserver: too large lease TTL";

inline Status ErrNoSpace() { return Status::ResourceExhausted(std::string(kErrNoSpace)); }
inline Status ErrNoLeader() { return Status::Unavailable(std::string(kErrNoLeader)); }
// Not an etcd client error in practice: rpc/ forwards the request to the leader when it sees it.
inline Status ErrNotLeader() { return Status::FailedPrecondition(std::string(kErrNotLeader)); }
inline Status ErrTimeout() { return Status::Unavailable(std::string(kErrTimeout)); }
inline Status ErrStopped() { return Status::Unavailable(std::string(kErrStopped)); }
inline Status ErrRequestTooLarge() {
  return Status::InvalidArgument(std::string(kErrRequestTooLarge));
}
inline Status ErrTooManyRequests() {
  return Status::ResourceExhausted(std::string(kErrTooManyRequests));
}
inline Status ErrMemberNotFound() { return Status::NotFound(std::string(kErrMemberNotFound)); }
inline Status ErrPeerUrlExists() {
  return Status::FailedPrecondition(std::string(kErrPeerUrlExists));
}
inline Status ErrMemberNotLearner() {
  return Status::FailedPrecondition(std::string(kErrMemberNotLearner));
}
inline constexpr std::string_view kErrMemberBadUrls = "etcdserver: given member URLs are invalid";
inline Status ErrMemberBadUrls() { return Status::InvalidArgument(std::string(kErrMemberBadUrls)); }
inline constexpr std::string_view kErrNotSupportedForLearner =
    "etcdserver: rpc not supported for learner";
inline Status ErrNotSupportedForLearner() {
  return Status::Unavailable(std::string(kErrNotSupportedForLearner));
}
inline Status ErrUnhealthy() { return Status::Unavailable(std::string(kErrUnhealthy)); }

inline bool IsNotLeader(const Status& s) {
  return s.code() == StatusCode::kFailedPrecondition && s.message() == kErrNotLeader;
}

}  // namespace ballot::server
