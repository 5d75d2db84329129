#include "server/convert.h"

#include "base/assert.h"

namespace ballot::server {

mvcc::RangeRequest FromProto(const etcdserverpb::RangeRequest& in) {
  mvcc::RangeRequest r;
  r.key = in.key();
  r.range_end = in.range_end();
  r.limit = in.limit();
  r.revision = in.revision();
  r.sort_order = static_cast<mvcc::RangeRequest::SortOrder>(in.sort_order());
  r.sort_target = static_cast<mvcc::RangeRequest::SortTarget>(in.sort_target());
  r.serializable = in.serializable();
  r.keys_only = in.keys_only();
  r.count_only = in.count_only();
  r.min_mod_revision = in.min_mod_revision();
  r.max_mod_revision = in.max_mod_revision();
  r.min_create_revision = in.min_create_revision();
  r.max_create_revision = in.max_create_revision();
  return r;
}

mvcc::PutRequest FromProto(const etcdserverpb::PutRequest& in) {
  mvcc::PutRequest r;
  r.key = in.key();
  r.value = in.value();
  r.lease = in.lease();
  r.prev_kv = in.prev_kv();
  r.ignore_value = in.ignore_value();
  r.ignore_lease = in.ignore_lease();
  return r;
}

mvcc::DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& in) {
  mvcc::DeleteRangeRequest r;
  r.key = in.key();
  r.range_end = in.range_end();
  r.prev_kv = in.prev_kv();
  return r;
}

namespace {

mvcc::Compare CompareFromProto(const etcdserverpb::Compare& in) {
  mvcc::Compare c;
  c.result = static_cast<mvcc::Compare::CompareResult>(in.result());
  c.target = static_cast<mvcc::Compare::CompareTarget>(in.target());
  c.key = in.key();
  c.range_end = in.range_end();
  // A oneof member that is not set reads as its zero value (etcd's compareKV).
  c.version = in.version();
  c.create_revision = in.create_revision();
  c.mod_revision = in.mod_revision();
  c.value = in.value();
  c.lease = in.lease();
  return c;
}

mvcc::RequestOp OpFromProto(const etcdserverpb::RequestOp& in) {
  switch (in.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      return mvcc::MakeOp(FromProto(in.request_range()));
    case etcdserverpb::RequestOp::kRequestPut:
      return mvcc::MakeOp(FromProto(in.request_put()));
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      return mvcc::MakeOp(FromProto(in.request_delete_range()));
    case etcdserverpb::RequestOp::kRequestTxn:
      return mvcc::MakeOp(FromProto(in.request_txn()));
    default:
      return mvcc::RequestOp{};
  }
}

void HeaderToProto(const mvcc::ResponseHeader& in, etcdserverpb::ResponseHeader* out) {
  out->set_cluster_id(in.cluster_id);
  out->set_member_id(in.member_id);
  out->set_revision(in.revision);
  out->set_raft_term(in.raft_term);
}

}  // namespace

mvcc::TxnRequest FromProto(const etcdserverpb::TxnRequest& in) {
  mvcc::TxnRequest r;
  for (const auto& c : in.compare()) r.compare.push_back(CompareFromProto(c));
  for (const auto& op : in.success()) r.success.push_back(OpFromProto(op));
  for (const auto& op : in.failure()) r.failure.push_back(OpFromProto(op));
  return r;
}

mvcc::CompactionRequest FromProto(const etcdserverpb::CompactionRequest& in) {
  mvcc::CompactionRequest r;
  r.revision = in.revision();
  r.physical = in.physical();
  return r;
}

void ToProto(const mvcc::KeyValue& in, mvccpb::KeyValue* out) {
  out->set_key(in.key);
  out->set_value(in.value);
  out->set_create_revision(in.create_revision);
  out->set_mod_revision(in.mod_revision);
  out->set_version(in.version);
  out->set_lease(in.lease);
}

void ToProto(const mvcc::Event& in, mvccpb::Event* out) {
  out->set_type(in.type == mvcc::EventType::kPut ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
  ToProto(in.kv, out->mutable_kv());
  // The watch hub reads an unread prev_kv value or drops prev_kv: never an empty value instead.
  BALLOT_ASSERT(!in.prev_value_unread, "an event's prev_kv value left unread");
  if (in.prev_kv) ToProto(*in.prev_kv, out->mutable_prev_kv());
}

void ToProto(const mvcc::RangeResponse& in, etcdserverpb::RangeResponse* out) {
  HeaderToProto(in.header, out->mutable_header());
  for (const auto& kv : in.kvs) ToProto(kv, out->add_kvs());
  out->set_more(in.more);
  out->set_count(in.count);
}

void ToProto(const mvcc::PutResponse& in, etcdserverpb::PutResponse* out) {
  HeaderToProto(in.header, out->mutable_header());
  if (in.prev_kv) ToProto(*in.prev_kv, out->mutable_prev_kv());
}

void ToProto(const mvcc::DeleteRangeResponse& in, etcdserverpb::DeleteRangeResponse* out) {
  HeaderToProto(in.header, out->mutable_header());
  out->set_deleted(in.deleted);
  for (const auto& kv : in.prev_kvs) ToProto(kv, out->add_prev_kvs());
}

void ToProto(const mvcc::TxnResponse& in, etcdserverpb::TxnResponse* out) {
  HeaderToProto(in.header, out->mutable_header());
  out->set_succeeded(in.succeeded);
  for (const auto& op : in.responses) {
    auto* o = out->add_responses();
    if (auto* r = std::get_if<mvcc::RangeResponse>(&op.response)) {
      ToProto(*r, o->mutable_response_range());
    } else if (auto* p = std::get_if<mvcc::PutResponse>(&op.response)) {
      ToProto(*p, o->mutable_response_put());
    } else if (auto* d = std::get_if<mvcc::DeleteRangeResponse>(&op.response)) {
      ToProto(*d, o->mutable_response_delete_range());
    } else if (auto* t = std::get_if<mvcc::Box<mvcc::TxnResponse>>(&op.response)) {
      ToProto(**t, o->mutable_response_txn());
    }
  }
}

}  // namespace ballot::server
