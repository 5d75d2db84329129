// The key space's requests and responses, field by field as etcd's api/etcdserverpb/rpc.proto
// (RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest, CompactionRequest, HashKVRequest and
// their responses), so that rpc/ converts proto <-> struct one to one. Field names and defaults are
// the proto's; enum values are the proto's numbers.
//
// A `bytes` field whose proto value is empty is an empty std::string here (gRPC cannot tell
// "absent" from "empty" either). A oneof is a std::variant (RequestOp, ResponseOp) or, for
// Compare's target_union, one field per member with `target` saying which one is read (a member
// that is not set reads as its zero value, as in etcd's compareKV).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mvcc/kv.h"

namespace ballot::mvcc {

// etcdserverpb.ResponseHeader. The store fills `revision`; the rpc layer fills the rest.
struct ResponseHeader {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  Revision revision = 0;
  uint64_t raft_term = 0;
  bool operator==(const ResponseHeader&) const = default;
};

struct RangeRequest {
  enum class SortOrder : int32_t { kNone = 0, kAscend = 1, kDescend = 2 };
  enum class SortTarget : int32_t { kKey = 0, kVersion = 1, kCreate = 2, kMod = 3, kValue = 4 };

  std::string key;
  // Empty: the single key `key`. "\0": every key >= key (with key "\0": every key). Otherwise the
  // half-open interval [key, range_end).
  std::string range_end;
  int64_t limit = 0;      // 0: no limit.
  Revision revision = 0;  // <= 0: the current revision.
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool serializable = false;  // The caller's business (read index or not); the store ignores it.
  bool keys_only = false;
  bool count_only = false;
  Revision min_mod_revision = 0;  // 0: no bound (the same for the three below).
  Revision max_mod_revision = 0;
  Revision min_create_revision = 0;
  Revision max_create_revision = 0;
  bool operator==(const RangeRequest&) const = default;
};

struct RangeResponse {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  bool more = false;  // More keys matched than `limit` let through.
  // Keys in the range at the revision read, before the min/max filters and the limit (etcd's
  // rule).
  int64_t count = 0;
  bool operator==(const RangeResponse&) const = default;
};

struct PutRequest {
  std::string key;
  std::string value;
  LeaseId lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;  // Keep the current value; the key must exist.
  bool ignore_lease = false;  // Keep the current lease; the key must exist.
  bool operator==(const PutRequest&) const = default;
};

struct PutResponse {
  ResponseHeader header;
  std::optional<KeyValue> prev_kv;
  bool operator==(const PutResponse&) const = default;
};

struct DeleteRangeRequest {
  std::string key;
  std::string range_end;  // As RangeRequest::range_end.
  bool prev_kv = false;
  bool operator==(const DeleteRangeRequest&) const = default;
};

struct DeleteRangeResponse {
  ResponseHeader header;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
  bool operator==(const DeleteRangeResponse&) const = default;
};

struct Compare {
  enum class CompareResult : int32_t { kEqual = 0, kGreater = 1, kLess = 2, kNotEqual = 3 };
  enum class CompareTarget : int32_t {
    kVersion = 0,
    kCreate = 1,
    kMod = 2,
    kValue = 3,
    kLease = 4
  };

  CompareResult result = CompareResult::kEqual;
  CompareTarget target = CompareTarget::kVersion;
  std::string key;
  // target_union: only the member named by `target` is read.
  int64_t version = 0;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  std::string value;
  LeaseId lease = 0;
  std::string range_end;  // As RangeRequest::range_end: every key of the range must satisfy it.
  bool operator==(const Compare&) const = default;
};

struct TxnRequest;
struct TxnResponse;

// A heap-held T with value semantics (copy is deep), for the recursion of nested txns.
template <typename T>
class Box {
 public:
  Box() : value_(std::make_unique<T>()) {}
  Box(T value) : value_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit on purpose.
  Box(const Box& other) : value_(std::make_unique<T>(*other.value_)) {}
  Box(Box&&) noexcept = default;
  Box& operator=(const Box& other) {
    if (this != &other) value_ = std::make_unique<T>(*other.value_);
    return *this;
  }
  Box& operator=(Box&&) noexcept = default;

  // A moved-from Box is empty; reading it is a bug.
  T& operator*() const { return *value_; }
  T* operator->() const { return value_.get(); }
  friend bool operator==(const Box& a, const Box& b) { return *a.value_ == *b.value_; }

 private:
  std::unique_ptr<T> value_;
};

// etcdserverpb.RequestOp: a oneof; std::monostate is the empty union (etcd skips it).
struct RequestOp {
  std::variant<std::monostate, RangeRequest, PutRequest, DeleteRangeRequest, Box<TxnRequest>>
      request;
  bool operator==(const RequestOp&) const;
};

struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
  bool operator==(const TxnRequest&) const = default;
};

struct ResponseOp {
  std::variant<std::monostate, RangeResponse, PutResponse, DeleteRangeResponse, Box<TxnResponse>>
      response;
  bool operator==(const ResponseOp&) const;
};

struct TxnResponse {
  ResponseHeader header;
  bool succeeded = false;
  std::vector<ResponseOp> responses;
  bool operator==(const TxnResponse&) const = default;
};

struct CompactionRequest {
  Revision revision = 0;
  // etcd waits for the physical removal before answering; here the member may call
  // Store::RunCompaction until it reports done (see store.h).
  bool physical = false;
  bool operator==(const CompactionRequest&) const = default;
};

struct CompactionResponse {
  ResponseHeader header;
  bool operator==(const CompactionResponse&) const = default;
};

struct HashKVRequest {
  Revision revision = 0;  // 0: the current revision.
  bool operator==(const HashKVRequest&) const = default;
};

struct HashKVResponse {
  ResponseHeader header;  // header.revision: the store's current revision.
  uint32_t hash = 0;
  Revision compact_revision = 0;
  Revision hash_revision = 0;  // The revision the hash covers (etcd 3.5's field).
  bool operator==(const HashKVResponse&) const = default;
};

// Store::Hash: the whole store's hash as of `revision` (its current revision then).
struct HashResponse {
  Revision revision = 0;
  uint32_t hash = 0;
  bool operator==(const HashResponse&) const = default;
};

inline bool RequestOp::operator==(const RequestOp&) const = default;
inline bool ResponseOp::operator==(const ResponseOp&) const = default;

// Builders for the variant members, so that call sites stay short.
inline RequestOp MakeOp(RangeRequest r) { return RequestOp{std::move(r)}; }
inline RequestOp MakeOp(PutRequest r) { return RequestOp{std::move(r)}; }
inline RequestOp MakeOp(DeleteRangeRequest r) { return RequestOp{std::move(r)}; }
inline RequestOp MakeOp(TxnRequest r) { return RequestOp{Box<TxnRequest>(std::move(r))}; }

}  // namespace ballot::mvcc
