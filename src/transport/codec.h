// Conversion between consensus::Message and its wire form (proto/peer.proto).
//
// Encoding cannot fail. Decoding validates everything a peer could get wrong (unknown enum values,
// zero or duplicate member ids, counts and sizes past the named bounds, offsets that overflow) and
// returns InvalidArgument with the field's name; it never asserts on received bytes.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "consensus/types.h"
#include "peer.pb.h"

namespace ballot::transport {

// Bounds on one received message. gRPC's receive limit already bounds the bytes of a batch; these
// bound what a well-formed but absurd message could make the receiver allocate or iterate. The
// engines stay far below them: an append carries at most Config::max_message_bytes (1 MiB) of
// entries at 24 accounted bytes or more each, i.e. fewer than 2^16 entries.
constexpr uint64_t kEntriesPerMessageMax = 1 << 17;
constexpr uint64_t kConfMembersMax = 1 << 12;  // Voters plus learners in one ConfState.

// Copies `msg` into `out` (which is cleared first).
void EncodeMessage(const consensus::Message& msg, peer::Message* out);
// As above, but moves the byte fields (entry data, context, snapshot chunk) out of `msg`.
void EncodeMessage(consensus::Message&& msg, peer::Message* out);

// Decodes and validates one received message.
Result<consensus::Message> DecodeMessage(const peer::Message& in);
// As above, but moves the byte fields out of `in`.
Result<consensus::Message> DecodeMessage(peer::Message&& in);

}  // namespace ballot::transport
