// Building etcd v3 requests the way etcdctl does: key ranges (--prefix, --from-key), and the
// txn command's stdin format (compares, then success ops, then failure ops, separated by empty
// lines; see ParseTxn).
#pragma once

#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "rpc.pb.h"

namespace ballot::client {

// The range end that covers every key starting with `prefix` (etcd's GetPrefixRangeEnd): the
// prefix with its last byte below 0xff incremented and what follows dropped; "\0" (to the end of
// the key space) when there is no such byte.
std::string PrefixRangeEnd(std::string_view prefix);

// The key range of a get or del, as etcdctl forms it from its arguments and flags.
struct KeyRange {
  std::string key;
  std::string range_end;
};
Result<KeyRange> MakeKeyRange(std::string key, std::optional<std::string> range_end, bool prefix,
                              bool from_key);

// Splits an op line into words like etcdctl's argify: a double-quoted word may hold spaces and
// Go escapes (\" \\ \n \t \xNN ...); anything else is split at white space.
Result<std::vector<std::string>> SplitWords(std::string_view line);

// One op of a txn line: "put KEY VALUE [--lease=HEX] [--prev-kv] [--ignore-value]
// [--ignore-lease]", "get KEY [RANGE_END] [--prefix] [--from-key] [--limit=N] [--rev=N]
// [--keys-only] [--count-only] [--serializable]", "del KEY [RANGE_END] [--prefix] [--from-key]
// [--prev-kv]". Flags take "--flag=V" or "--flag V".
Result<etcdserverpb::RequestOp> ParseRequestOp(std::string_view line);

// One compare line: TARGET("KEY") OP "VALUE", TARGET one of value/val, version/ver,
// create/c, mod/m, lease (hex id); OP one of = != < >.
Result<etcdserverpb::Compare> ParseCompare(std::string_view line);

// etcdctl txn's stdin format: compare lines until an empty line, then success op lines until an
// empty line, then failure op lines until an empty line or the end of input. Leading and trailing
// white space of each line is ignored. Errors name the line that could not be read.
Result<etcdserverpb::TxnRequest> ParseTxn(std::istream& in);

}  // namespace ballot::client
