// etcd's request checks (api/v3rpc/key.go): empty keys, flag conflicts, txn size and keys that a
// txn would modify twice.
#include <set>
#include <string>
#include <vector>

#include "mvcc/store.h"

namespace ballot::mvcc {
namespace {

// A deletion's key interval. `end_infinite`: range_end "\0" (every key >= begin); a single key is
// [begin, begin + "\0").
struct Interval {
  std::string begin;
  std::string end;
  bool end_infinite = false;
  bool Contains(const std::string& key) const {
    return begin <= key && (end_infinite || key < end);
  }
};

Interval DeleteInterval(const DeleteRangeRequest& del) {
  if (del.range_end.empty()) return {del.key, del.key + std::string(1, '\0'), false};
  if (del.range_end == std::string(1, '\0')) return {del.key, "", true};
  return {del.key, del.range_end, false};
}

bool Intersects(const std::vector<Interval>& dels, const std::string& key) {
  for (const Interval& iv : dels) {
    if (iv.Contains(key)) return true;
  }
  return false;
}

// etcd's checkIntervals: no key is put twice on one path through the txn, and no key is both put
// and deleted. Puts in the success and failure branches of one nested txn may coincide (only one
// branch runs). Unlike etcd, a from-key deletion (range_end "\0") covers every key above its start
// (etcd's interval tree treats "\0" as an empty interval there, letting such a txn through).
Status CheckIntervals(const std::vector<RequestOp>& ops, std::set<std::string>* puts,
                      std::vector<Interval>* dels) {
  for (const RequestOp& op : ops) {
    if (auto* del = std::get_if<DeleteRangeRequest>(&op.request)) {
      dels->push_back(DeleteInterval(*del));
    }
  }
  for (const RequestOp& op : ops) {
    auto* txn = std::get_if<Box<TxnRequest>>(&op.request);
    if (txn == nullptr) continue;
    std::set<std::string> puts_then, puts_else;
    std::vector<Interval> dels_then, dels_else;
    RETURN_IF_ERROR(CheckIntervals((*txn)->success, &puts_then, &dels_then));
    RETURN_IF_ERROR(CheckIntervals((*txn)->failure, &puts_else, &dels_else));
    for (const std::string& key : puts_then) {
      if (puts->count(key) || Intersects(*dels, key)) return ErrDuplicateKey();
      puts->insert(key);
    }
    for (const std::string& key : puts_else) {
      if (puts->count(key) && !puts_then.count(key)) return ErrDuplicateKey();
      if (Intersects(*dels, key)) return ErrDuplicateKey();
      puts->insert(key);
    }
    dels->insert(dels->end(), dels_then.begin(), dels_then.end());
    dels->insert(dels->end(), dels_else.begin(), dels_else.end());
  }
  for (const RequestOp& op : ops) {
    auto* put = std::get_if<PutRequest>(&op.request);
    if (put == nullptr) continue;
    if (puts->count(put->key) || Intersects(*dels, put->key)) return ErrDuplicateKey();
    puts->insert(put->key);
  }
  return Status::Ok();
}

Status CheckRequestOp(const RequestOp& op, size_t max_txn_ops);

// etcd's checkTxnRequest; a nested txn gets what its parent leaves of the budget.
Status CheckTxnOps(const TxnRequest& txn, size_t max_txn_ops) {
  size_t ops = std::max({txn.compare.size(), txn.success.size(), txn.failure.size()});
  if (ops > max_txn_ops) return ErrTooManyOps();
  for (const Compare& c : txn.compare) {
    if (c.key.empty()) return ErrEmptyKey();
  }
  for (const RequestOp& op : txn.success) RETURN_IF_ERROR(CheckRequestOp(op, max_txn_ops - ops));
  for (const RequestOp& op : txn.failure) RETURN_IF_ERROR(CheckRequestOp(op, max_txn_ops - ops));
  return Status::Ok();
}

Status CheckRequestOp(const RequestOp& op, size_t max_txn_ops) {
  if (auto* r = std::get_if<RangeRequest>(&op.request)) return CheckRangeRequest(*r);
  if (auto* p = std::get_if<PutRequest>(&op.request)) return CheckPutRequest(*p);
  if (auto* d = std::get_if<DeleteRangeRequest>(&op.request)) return CheckDeleteRangeRequest(*d);
  if (auto* t = std::get_if<Box<TxnRequest>>(&op.request)) return CheckTxnOps(**t, max_txn_ops);
  return Status::Ok();
}

}  // namespace

Status CheckRangeRequest(const RangeRequest& request) {
  if (request.key.empty()) return ErrEmptyKey();
  auto order = static_cast<int32_t>(request.sort_order);
  auto target = static_cast<int32_t>(request.sort_target);
  if (order < 0 || order > 2 || target < 0 || target > 4) return ErrInvalidSortOption();
  return Status::Ok();
}

Status CheckPutRequest(const PutRequest& request) {
  if (request.key.empty()) return ErrEmptyKey();
  if (request.ignore_value && !request.value.empty()) return ErrValueProvided();
  if (request.ignore_lease && request.lease != 0) return ErrLeaseProvided();
  return Status::Ok();
}

Status CheckDeleteRangeRequest(const DeleteRangeRequest& request) {
  if (request.key.empty()) return ErrEmptyKey();
  return Status::Ok();
}

Status CheckTxnRequest(const TxnRequest& request, size_t max_txn_ops) {
  RETURN_IF_ERROR(CheckTxnOps(request, max_txn_ops));
  std::set<std::string> puts;
  std::vector<Interval> dels;
  RETURN_IF_ERROR(CheckIntervals(request.success, &puts, &dels));
  puts.clear();
  dels.clear();
  return CheckIntervals(request.failure, &puts, &dels);
}

}  // namespace ballot::mvcc
