// The key space's errors, with etcd's codes and messages (etcd's api/v3rpc/rpctypes), so that a
// client sees what etcd would have said.
#pragma once

#include "base/status.h"

namespace ballot::mvcc {

inline constexpr std::string_view kErrCompacted =
    "etcdserver: mvcc: required revision has been compacted";
inline constexpr std::string_view kErrFutureRev =
    "etcdserver: mvcc: required revision is a future revision";
inline constexpr std::string_view kErrEmptyKey = "etcdserver: key is not provided";
inline constexpr std::string_view kErrKeyNotFound = "etcdserver: key not found";
inline constexpr std::string_view kErrValueProvided = "etcdserver: value is provided";
inline constexpr std::string_view kErrLeaseProvided = "etcdserver: lease is provided";
inline constexpr std::string_view kErrTooManyOps = "etcdserver: too many operations in txn request";
inline constexpr std::string_view kErrDuplicateKey =
    "etcdserver: duplicate key given in txn request";
inline constexpr std::string_view kErrLeaseNotFound = "etcdserver: requested lease not found";
inline constexpr std::string_view kErrInvalidSortOption = "etcdserver: invalid sort option";

inline Status ErrCompacted() { return Status::OutOfRange(std::string(kErrCompacted)); }
inline Status ErrFutureRev() { return Status::OutOfRange(std::string(kErrFutureRev)); }
inline Status ErrEmptyKey() { return Status::InvalidArgument(std::string(kErrEmptyKey)); }
inline Status ErrKeyNotFound() { return Status::InvalidArgument(std::string(kErrKeyNotFound)); }
inline Status ErrValueProvided() { return Status::InvalidArgument(std::string(kErrValueProvided)); }
inline Status ErrLeaseProvided() { return Status::InvalidArgument(std::string(kErrLeaseProvided)); }
inline Status ErrTooManyOps() { return Status::InvalidArgument(std::string(kErrTooManyOps)); }
inline Status ErrDuplicateKey() { return Status::InvalidArgument(std::string(kErrDuplicateKey)); }
inline Status ErrLeaseNotFound() { return Status::NotFound(std::string(kErrLeaseNotFound)); }
inline Status ErrInvalidSortOption() {
  return Status::InvalidArgument(std::string(kErrInvalidSortOption));
}

}  // namespace ballot::mvcc
