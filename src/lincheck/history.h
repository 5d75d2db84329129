// The history a linearizability check consumes: one record per client operation on a key-value
// register map, with its invocation and response times. The on-disk form is JSON lines, documented
// in docs/lincheck.md; the cluster simulator builds Operation values directly.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ballot::lincheck {

enum class OpKind : uint8_t { kGet, kPut, kCas, kDelete };

// kFail: the operation certainly had no effect. kUnknown: it may have taken effect at any time
// after its call, or never (a timeout, a lost connection).
enum class OpStatus : uint8_t { kOk, kFail, kUnknown };

struct Operation {
  uint64_t client = 0;
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string value;                  // put, cas: the value written
  std::string expected;               // cas
  std::optional<std::string> output;  // get: value read (nullopt = absent)
  bool cas_succeeded = false;         // cas output
  int64_t call = 0;
  int64_t ret = 0;  // ignored unless status is kOk
  OpStatus status = OpStatus::kOk;

  friend bool operator==(const Operation&, const Operation&) = default;
};

// "get", "put", "cas", "delete" / "ok", "fail", "unknown": the names the JSON format uses.
std::string_view OpKindName(OpKind kind);
std::string_view OpStatusName(OpStatus status);

// Reads a whole history, one operation per line; blank lines are skipped. Returns
// InvalidArgument naming the first malformed line ("line 7: ..."). Never throws.
Result<std::vector<Operation>> ParseHistory(std::istream& in);

// Parses and validates one JSON line. Returns InvalidArgument on bad JSON, an unknown op or
// status, a missing or mistyped field, return < call, an ok operation without a return, or an ok
// get without an "output" key. Never throws.
Result<Operation> ParseOperation(std::string_view json_line);

// One JSON line without a trailing newline; ParseOperation(ToJsonLine(op)) == op for every op that
// ParseOperation could have produced. "return" is written for ok operations and, for others, only
// when ret is non-zero. Keys and values must be UTF-8 to round-trip: other bytes are written as
// U+FFFD.
std::string ToJsonLine(const Operation& op);

}  // namespace ballot::lincheck
