// Conversions between etcd's protos (etcdserverpb, mvccpb) and the key space's structs
// (mvcc/requests.h, mvcc/kv.h), field by field. Used by the apply path (log entries carry protos)
// and by rpc/ (responses).
#pragma once

#include "kv.pb.h"
#include "mvcc/kv.h"
#include "mvcc/requests.h"
#include "rpc.pb.h"

namespace ballot::server {

mvcc::RangeRequest FromProto(const etcdserverpb::RangeRequest& in);
mvcc::PutRequest FromProto(const etcdserverpb::PutRequest& in);
mvcc::DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& in);
mvcc::TxnRequest FromProto(const etcdserverpb::TxnRequest& in);
mvcc::CompactionRequest FromProto(const etcdserverpb::CompactionRequest& in);

void ToProto(const mvcc::KeyValue& in, mvccpb::KeyValue* out);
void ToProto(const mvcc::Event& in, mvccpb::Event* out);
void ToProto(const mvcc::RangeResponse& in, etcdserverpb::RangeResponse* out);
void ToProto(const mvcc::PutResponse& in, etcdserverpb::PutResponse* out);
void ToProto(const mvcc::DeleteRangeResponse& in, etcdserverpb::DeleteRangeResponse* out);
void ToProto(const mvcc::TxnResponse& in, etcdserverpb::TxnResponse* out);

}  // namespace ballot::server
