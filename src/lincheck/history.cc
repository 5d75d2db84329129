#include "lincheck/history.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace ballot::lincheck {
namespace {

using Json = nlohmann::json;

Status MissingField(std::string_view name) {
  return Status::InvalidArgument("missing field \"" + std::string(name) + "\"");
}

Status WrongType(std::string_view name, std::string_view type) {
  return Status::InvalidArgument("field \"" + std::string(name) + "\" must be " +
                                 std::string(type));
}

// A pointer to the member, or null when absent.
const Json* Find(const Json& object, std::string_view name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

Result<std::string> RequiredString(const Json& object, std::string_view name) {
  const Json* field = Find(object, name);
  if (field == nullptr) return MissingField(name);
  if (!field->is_string()) return WrongType(name, "a string");
  return field->get<std::string>();
}

Result<int64_t> Integer(const Json& field, std::string_view name) {
  if (!field.is_number_integer()) return WrongType(name, "an integer");
  if (field.is_number_unsigned() &&
      field.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return WrongType(name, "an integer that fits in 64 signed bits");
  }
  return field.get<int64_t>();
}

Result<OpKind> ParseKind(std::string_view name) {
  if (name == "get") return OpKind::kGet;
  if (name == "put") return OpKind::kPut;
  if (name == "cas") return OpKind::kCas;
  if (name == "delete") return OpKind::kDelete;
  return Status::InvalidArgument("unknown op \"" + std::string(name) +
                                 "\" (expected get, put, cas or delete)");
}

Result<OpStatus> ParseStatus(std::string_view name) {
  if (name == "ok") return OpStatus::kOk;
  if (name == "fail") return OpStatus::kFail;
  if (name == "unknown") return OpStatus::kUnknown;
  return Status::InvalidArgument("unknown status \"" + std::string(name) +
                                 "\" (expected ok, fail or unknown)");
}

// Fields every operation has: client, op, key, call, return, status.
Status ParseCommonFields(const Json& object, Operation& op) {
  const Json* client = Find(object, "client");
  if (client == nullptr) return MissingField("client");
  if (!client->is_number_unsigned()) return WrongType("client", "a non-negative integer");
  op.client = client->get<uint64_t>();

  ASSIGN_OR_RETURN(std::string kind_name, RequiredString(object, "op"));
  ASSIGN_OR_RETURN(op.kind, ParseKind(kind_name));
  ASSIGN_OR_RETURN(op.key, RequiredString(object, "key"));
  ASSIGN_OR_RETURN(std::string status_name, RequiredString(object, "status"));
  ASSIGN_OR_RETURN(op.status, ParseStatus(status_name));

  const Json* call = Find(object, "call");
  if (call == nullptr) return MissingField("call");
  ASSIGN_OR_RETURN(op.call, Integer(*call, "call"));

  const Json* ret = Find(object, "return");
  if (ret == nullptr) {
    if (op.status == OpStatus::kOk) {
      return Status::InvalidArgument("missing field \"return\" (required when status is ok)");
    }
    op.ret = 0;
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(op.ret, Integer(*ret, "return"));
  if (op.ret < op.call) {
    return Status::InvalidArgument("return (" + std::to_string(op.ret) + ") is before call (" +
                                   std::to_string(op.call) + ")");
  }
  return Status::Ok();
}

// The per-kind fields. Outputs are required only of ok operations: a failed or unknown
// operation's output, if any, is not evidence of anything.
Status ParseKindFields(const Json& object, Operation& op) {
  const bool ok = op.status == OpStatus::kOk;
  switch (op.kind) {
    case OpKind::kGet: {
      const Json* output = Find(object, "output");
      if (output == nullptr) {
        if (ok) return Status::InvalidArgument("missing field \"output\" (required of an ok get)");
        return Status::Ok();
      }
      if (output->is_null()) return Status::Ok();
      if (!output->is_string()) return WrongType("output", "a string or null");
      op.output = output->get<std::string>();
      return Status::Ok();
    }
    case OpKind::kPut: {
      ASSIGN_OR_RETURN(op.value, RequiredString(object, "value"));
      return Status::Ok();
    }
    case OpKind::kCas: {
      ASSIGN_OR_RETURN(op.expected, RequiredString(object, "expected"));
      ASSIGN_OR_RETURN(op.value, RequiredString(object, "value"));
      const Json* output = Find(object, "output");
      if (output == nullptr) {
        if (ok) return Status::InvalidArgument("missing field \"output\" (required of an ok cas)");
        return Status::Ok();
      }
      if (!output->is_boolean()) return WrongType("output", "a boolean");
      op.cas_succeeded = output->get<bool>();
      return Status::Ok();
    }
    case OpKind::kDelete:
      return Status::Ok();
  }
  BALLOT_UNREACHABLE("OpKind out of range");
}

Result<Json> ParseJson(std::string_view text) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string("bad JSON: ") + e.what());
  }
}

}  // namespace

std::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kGet:
      return "get";
    case OpKind::kPut:
      return "put";
    case OpKind::kCas:
      return "cas";
    case OpKind::kDelete:
      return "delete";
  }
  BALLOT_UNREACHABLE("OpKind out of range");
}

std::string_view OpStatusName(OpStatus status) {
  switch (status) {
    case OpStatus::kOk:
      return "ok";
    case OpStatus::kFail:
      return "fail";
    case OpStatus::kUnknown:
      return "unknown";
  }
  BALLOT_UNREACHABLE("OpStatus out of range");
}

Result<Operation> ParseOperation(std::string_view json_line) {
  ASSIGN_OR_RETURN(Json object, ParseJson(json_line));
  if (!object.is_object()) return Status::InvalidArgument("not a JSON object");
  Operation op;
  // The accessors used below are guarded by type checks; the catch is a backstop so that no
  // nlohmann exception can leave the library.
  try {
    RETURN_IF_ERROR(ParseCommonFields(object, op));
    RETURN_IF_ERROR(ParseKindFields(object, op));
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string("bad operation: ") + e.what());
  }
  return op;
}

Result<std::vector<Operation>> ParseHistory(std::istream& in) {
  std::vector<Operation> history;
  std::string line;
  uint64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Result<Operation> op = ParseOperation(line);
    if (!op.ok()) {
      return Status::InvalidArgument("line " + std::to_string(line_number) + ": " +
                                     op.status().message());
    }
    history.push_back(std::move(op).value());
  }
  if (in.bad()) {
    return Status::DataLoss("read error after line " + std::to_string(line_number));
  }
  return history;
}

std::string ToJsonLine(const Operation& op) {
  // ordered_json keeps the documented field order, which makes files diffable and readable.
  nlohmann::ordered_json object;
  object["client"] = op.client;
  object["op"] = OpKindName(op.kind);
  object["key"] = op.key;
  switch (op.kind) {
    case OpKind::kGet:
      object["output"] = op.output.has_value() ? nlohmann::ordered_json(*op.output) : nullptr;
      break;
    case OpKind::kPut:
      object["value"] = op.value;
      break;
    case OpKind::kCas:
      object["expected"] = op.expected;
      object["value"] = op.value;
      object["output"] = op.cas_succeeded;
      break;
    case OpKind::kDelete:
      break;
  }
  object["call"] = op.call;
  if (op.status == OpStatus::kOk || op.ret != 0) object["return"] = op.ret;
  object["status"] = OpStatusName(op.status);
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace ballot::lincheck
