#include "transport/codec.h"

#include <set>
#include <string>
#include <utility>

namespace ballot::transport {
namespace {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::Message;
using consensus::MessageType;
using consensus::SnapshotMeta;

// The wire enums carry the C++ values unchanged.
#define BALLOT_SAME_VALUE(proto, cpp) \
  static_assert(static_cast<int>(peer::proto) == static_cast<int>(MessageType::cpp))
BALLOT_SAME_VALUE(APPEND, kAppend);
BALLOT_SAME_VALUE(APPEND_RESPONSE, kAppendResponse);
BALLOT_SAME_VALUE(VOTE, kVote);
BALLOT_SAME_VALUE(VOTE_RESPONSE, kVoteResponse);
BALLOT_SAME_VALUE(PRE_VOTE, kPreVote);
BALLOT_SAME_VALUE(PRE_VOTE_RESPONSE, kPreVoteResponse);
BALLOT_SAME_VALUE(HEARTBEAT, kHeartbeat);
BALLOT_SAME_VALUE(HEARTBEAT_RESPONSE, kHeartbeatResponse);
BALLOT_SAME_VALUE(SNAPSHOT, kSnapshot);
BALLOT_SAME_VALUE(SNAPSHOT_RESPONSE, kSnapshotResponse);
BALLOT_SAME_VALUE(READ_INDEX, kReadIndex);
BALLOT_SAME_VALUE(READ_INDEX_RESPONSE, kReadIndexResponse);
BALLOT_SAME_VALUE(TIMEOUT_NOW, kTimeoutNow);
BALLOT_SAME_VALUE(PREPARE, kPrepare);
BALLOT_SAME_VALUE(PROMISE, kPromise);
BALLOT_SAME_VALUE(ACCEPT, kAccept);
BALLOT_SAME_VALUE(ACCEPTED, kAccepted);
BALLOT_SAME_VALUE(CATCH_UP, kCatchUp);
BALLOT_SAME_VALUE(CATCH_UP_RESPONSE, kCatchUpResponse);
#undef BALLOT_SAME_VALUE
static_assert(static_cast<int>(peer::NORMAL) == static_cast<int>(EntryType::kNormal));
static_assert(static_cast<int>(peer::NOOP) == static_cast<int>(EntryType::kNoop));
static_assert(static_cast<int>(peer::CONF_CHANGE) == static_cast<int>(EntryType::kConfChange));

// Field checklist: these bindings stop compiling when a struct gains or loses a field. When that
// happens, add the field to proto/peer.proto, to Encode/Decode below, and to the random messages
// of tests/unit/transport_codec_test.cc.
[[maybe_unused]] void FieldChecklist(const Message& m, const Entry& e, const SnapshotMeta& s,
                                     const ConfState& c) {
  [[maybe_unused]] const auto& [type, from, to, term, log_term, index, commit, entries, reject,
                                reject_hint, reject_term, context, snapshot_meta, snapshot_offset,
                                snapshot_chunk, snapshot_done, snapshot_size] = m;
  [[maybe_unused]] const auto& [e_term, e_index, e_type, e_data] = e;
  [[maybe_unused]] const auto& [s_index, s_term, s_conf] = s;
  [[maybe_unused]] const auto& [voters, learners] = c;
}

// A switch without a default: -Wswitch names any enumerator added later and not listed here.
bool KnownMessageType(int value) {
  if (value < 0 || value > 255) return false;
  switch (static_cast<MessageType>(value)) {
    case MessageType::kAppend:
    case MessageType::kAppendResponse:
    case MessageType::kVote:
    case MessageType::kVoteResponse:
    case MessageType::kPreVote:
    case MessageType::kPreVoteResponse:
    case MessageType::kHeartbeat:
    case MessageType::kHeartbeatResponse:
    case MessageType::kSnapshot:
    case MessageType::kSnapshotResponse:
    case MessageType::kReadIndex:
    case MessageType::kReadIndexResponse:
    case MessageType::kTimeoutNow:
    case MessageType::kPrepare:
    case MessageType::kPromise:
    case MessageType::kAccept:
    case MessageType::kAccepted:
    case MessageType::kCatchUp:
    case MessageType::kCatchUpResponse:
      return true;
  }
  return false;
}

bool KnownEntryType(int value) {
  if (value < 0 || value > 255) return false;
  switch (static_cast<EntryType>(value)) {
    case EntryType::kNormal:
    case EntryType::kNoop:
    case EntryType::kConfChange:
      return true;
  }
  return false;
}

// Moves from `s` when kMove, copies otherwise.
template <bool kMove, typename S>
void Put(S& s, std::string* out) {
  if constexpr (kMove) {
    *out = std::move(s);
  } else {
    *out = s;
  }
}

template <bool kMove, typename M>
void Encode(M& msg, peer::Message* out) {
  out->Clear();
  out->set_type(static_cast<peer::MessageType>(static_cast<int>(msg.type)));
  out->set_from(msg.from);
  out->set_to(msg.to);
  out->set_term(msg.term);
  out->set_log_term(msg.log_term);
  out->set_index(msg.index);
  out->set_commit(msg.commit);
  out->mutable_entries()->Reserve(static_cast<int>(msg.entries.size()));
  for (auto& e : msg.entries) {
    peer::Entry* pe = out->add_entries();
    pe->set_term(e.term);
    pe->set_index(e.index);
    pe->set_type(static_cast<peer::EntryType>(static_cast<int>(e.type)));
    Put<kMove>(e.data, pe->mutable_data());
  }
  out->set_reject(msg.reject);
  out->set_reject_hint(msg.reject_hint);
  out->set_reject_term(msg.reject_term);
  Put<kMove>(msg.context, out->mutable_context());
  // An empty meta is left out of the wire (proto3 presence): it is the common case.
  const SnapshotMeta& meta = msg.snapshot_meta;
  if (meta != SnapshotMeta{}) {
    peer::SnapshotMeta* pm = out->mutable_snapshot_meta();
    pm->set_index(meta.index);
    pm->set_term(meta.term);
    for (consensus::NodeId id : meta.conf.voters) pm->mutable_conf()->add_voters(id);
    for (consensus::NodeId id : meta.conf.learners) pm->mutable_conf()->add_learners(id);
  }
  out->set_snapshot_offset(msg.snapshot_offset);
  Put<kMove>(msg.snapshot_chunk, out->mutable_snapshot_chunk());
  out->set_snapshot_done(msg.snapshot_done);
  out->set_snapshot_size(msg.snapshot_size);
}

Status DecodeMembers(const google::protobuf::RepeatedField<uint64_t>& in, const char* what,
                     std::set<consensus::NodeId>* out) {
  for (uint64_t id : in) {
    if (id == consensus::kNoNode) {
      return Status::InvalidArgument(std::string("snapshot_meta.conf.") + what +
                                     " holds member id 0");
    }
    if (!out->insert(id).second) {
      return Status::InvalidArgument(std::string("snapshot_meta.conf.") + what + " holds member " +
                                     std::to_string(id) + " twice");
    }
  }
  return Status::Ok();
}

Status DecodeMeta(const peer::SnapshotMeta& in, SnapshotMeta* out) {
  out->index = in.index();
  out->term = in.term();
  const peer::ConfState& conf = in.conf();
  if (static_cast<uint64_t>(conf.voters_size()) + conf.learners_size() > kConfMembersMax) {
    return Status::InvalidArgument(
        "snapshot_meta.conf has " + std::to_string(conf.voters_size() + conf.learners_size()) +
        " members, more than the bound " + std::to_string(kConfMembersMax));
  }
  RETURN_IF_ERROR(DecodeMembers(conf.voters(), "voters", &out->conf.voters));
  RETURN_IF_ERROR(DecodeMembers(conf.learners(), "learners", &out->conf.learners));
  return Status::Ok();
}

// Moves the byte fields out of `in`.
Result<Message> Decode(peer::Message& in) {
  if (!KnownMessageType(in.type())) {
    return Status::InvalidArgument("unknown message type " + std::to_string(in.type()));
  }
  if (static_cast<uint64_t>(in.entries_size()) > kEntriesPerMessageMax) {
    return Status::InvalidArgument("message has " + std::to_string(in.entries_size()) +
                                   " entries, more than the bound " +
                                   std::to_string(kEntriesPerMessageMax));
  }
  const uint64_t chunk_bytes = in.snapshot_chunk().size();
  if (in.snapshot_offset() > in.snapshot_size() ||
      chunk_bytes > in.snapshot_size() - in.snapshot_offset()) {
    return Status::InvalidArgument("snapshot chunk [" + std::to_string(in.snapshot_offset()) +
                                   ", +" + std::to_string(chunk_bytes) +
                                   ") lies outside a snapshot of " +
                                   std::to_string(in.snapshot_size()) + " bytes");
  }
  Message msg;
  msg.type = static_cast<MessageType>(in.type());
  msg.from = in.from();
  msg.to = in.to();
  msg.term = in.term();
  msg.log_term = in.log_term();
  msg.index = in.index();
  msg.commit = in.commit();
  msg.entries.resize(in.entries_size());
  for (int i = 0; i < in.entries_size(); ++i) {
    auto& pe = *in.mutable_entries(i);
    if (!KnownEntryType(pe.type())) {
      return Status::InvalidArgument("entry " + std::to_string(i) + " has unknown type " +
                                     std::to_string(pe.type()));
    }
    Entry& e = msg.entries[i];
    e.term = pe.term();
    e.index = pe.index();
    e.type = static_cast<EntryType>(pe.type());
    Put</*kMove=*/true>(*pe.mutable_data(), &e.data);
  }
  msg.reject = in.reject();
  msg.reject_hint = in.reject_hint();
  msg.reject_term = in.reject_term();
  Put</*kMove=*/true>(*in.mutable_context(), &msg.context);
  if (in.has_snapshot_meta()) RETURN_IF_ERROR(DecodeMeta(in.snapshot_meta(), &msg.snapshot_meta));
  msg.snapshot_offset = in.snapshot_offset();
  Put</*kMove=*/true>(*in.mutable_snapshot_chunk(), &msg.snapshot_chunk);
  msg.snapshot_done = in.snapshot_done();
  msg.snapshot_size = in.snapshot_size();
  return msg;
}

}  // namespace

void EncodeMessage(const Message& msg, peer::Message* out) { Encode</*kMove=*/false>(msg, out); }

void EncodeMessage(Message&& msg, peer::Message* out) { Encode</*kMove=*/true>(msg, out); }

Result<Message> DecodeMessage(const peer::Message& in) {
  peer::Message copy = in;
  return Decode(copy);
}

Result<Message> DecodeMessage(peer::Message&& in) { return Decode(in); }

}  // namespace ballot::transport
