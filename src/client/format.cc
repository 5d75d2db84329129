#include "client/format.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace ballot::client {
namespace {

std::string Hex(uint64_t value, int width = 0) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, width == 16 ? "%016llx" : "%llx",
                static_cast<unsigned long long>(value));
  return buffer;
}

// Go's %16x: padded with spaces to 16 columns.
std::string HexSpaced(uint64_t value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%16llx", static_cast<unsigned long long>(value));
  return buffer;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n =
        (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t n = uint8_t(bytes[i]) << 16;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

using Json = nlohmann::ordered_json;

Json HeaderJson(const etcdserverpb::ResponseHeader& header) {
  Json json = Json::object();
  if (header.cluster_id() != 0) json["cluster_id"] = header.cluster_id();
  if (header.member_id() != 0) json["member_id"] = header.member_id();
  if (header.revision() != 0) json["revision"] = header.revision();
  if (header.raft_term() != 0) json["raft_term"] = header.raft_term();
  return json;
}

Json KeyValueJson(const mvccpb::KeyValue& kv) {
  Json json = Json::object();
  if (!kv.key().empty()) json["key"] = Base64(kv.key());
  if (kv.create_revision() != 0) json["create_revision"] = kv.create_revision();
  if (kv.mod_revision() != 0) json["mod_revision"] = kv.mod_revision();
  if (kv.version() != 0) json["version"] = kv.version();
  if (!kv.value().empty()) json["value"] = Base64(kv.value());
  if (kv.lease() != 0) json["lease"] = kv.lease();
  return json;
}

std::string JoinUrls(const google::protobuf::RepeatedPtrField<std::string>& urls) {
  std::string out;
  for (const std::string& url : urls) {
    if (!out.empty()) out += ',';
    out += url;
  }
  return out;
}

std::vector<std::string> StatusCells(const EndpointStatus& row) {
  if (!row.error.ok()) return {row.endpoint, "", "", "", "", "", "", "", "", row.error.message()};
  const etcdserverpb::StatusResponse& s = row.status;
  std::string errors;
  for (const std::string& e : s.errors()) errors += (errors.empty() ? "" : ", ") + e;
  return {row.endpoint,
          Hex(s.header().member_id()),
          s.version(),
          HumanBytes(static_cast<uint64_t>(s.dbsize())),
          s.leader() != 0 && s.leader() == s.header().member_id() ? "true" : "false",
          s.islearner() ? "true" : "false",
          std::to_string(s.raftterm()),
          std::to_string(s.raftindex()),
          std::to_string(s.raftappliedindex()),
          errors};
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string original(text);
  if (text.empty()) return Status::InvalidArgument("empty duration");
  double total_ms = 0;
  while (!text.empty()) {
    size_t number_end = 0;
    while (
        number_end < text.size() &&
        (std::isdigit(static_cast<unsigned char>(text[number_end])) || text[number_end] == '.')) {
      ++number_end;
    }
    if (number_end == 0) {
      return Status::InvalidArgument("duration \"" + original + "\": expected a number");
    }
    const double number = std::strtod(std::string(text.substr(0, number_end)).c_str(), nullptr);
    text.remove_prefix(number_end);
    size_t unit_end = 0;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    const std::string_view unit = text.substr(0, unit_end);
    text.remove_prefix(unit_end);
    double unit_ms = 0;
    if (unit == "ms") {
      unit_ms = 1;
    } else if (unit == "s") {
      unit_ms = 1000;
    } else if (unit == "m") {
      unit_ms = 60'000;
    } else if (unit == "h") {
      unit_ms = 3'600'000;
    } else {
      return Status::InvalidArgument("duration \"" + original +
                                     "\": expected a unit (ms, s, m or h) after each number");
    }
    total_ms += number * unit_ms;
  }
  if (!(total_ms > 0) || total_ms > 1e12) {
    return Status::InvalidArgument("duration \"" + original + "\" out of range");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

Result<std::vector<std::string>> SplitEndpoints(std::string_view list) {
  std::vector<std::string> endpoints;
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    const std::string_view item = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty())
      return Status::InvalidArgument("empty endpoint in \"" + std::string(list) + "\"");
    endpoints.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return endpoints;
}

std::string FormatKeyValue(const mvccpb::KeyValue& kv, bool value_only) {
  std::string out;
  if (!value_only) out += kv.key() + "\n";
  out += kv.value() + "\n";
  return out;
}

std::string FormatGet(const etcdserverpb::RangeResponse& response, GetFormat format) {
  std::string out;
  for (const mvccpb::KeyValue& kv : response.kvs()) {
    out += FormatKeyValue(kv, format.print_value_only);
  }
  return out;
}

std::string FormatPut(const etcdserverpb::PutResponse& response) {
  std::string out = "OK\n";
  if (response.has_prev_kv()) out += FormatKeyValue(response.prev_kv());
  return out;
}

std::string FormatDelete(const etcdserverpb::DeleteRangeResponse& response) {
  std::string out = std::to_string(response.deleted()) + "\n";
  for (const mvccpb::KeyValue& kv : response.prev_kvs()) out += FormatKeyValue(kv);
  return out;
}

std::string FormatTxn(const etcdserverpb::TxnResponse& response) {
  std::string out = response.succeeded() ? "SUCCESS\n" : "FAILURE\n";
  for (const etcdserverpb::ResponseOp& op : response.responses()) {
    out += "\n";
    switch (op.response_case()) {
      case etcdserverpb::ResponseOp::kResponsePut:
        out += FormatPut(op.response_put());
        break;
      case etcdserverpb::ResponseOp::kResponseRange:
        out += FormatGet(op.response_range());
        break;
      case etcdserverpb::ResponseOp::kResponseDeleteRange:
        out += FormatDelete(op.response_delete_range());
        break;
      default:
        out += "unexpected response\n";
        break;
    }
  }
  return out;
}

std::string FormatWatchEvent(const mvccpb::Event& event) {
  std::string out = event.type() == mvccpb::Event::DELETE ? "DELETE\n" : "PUT\n";
  if (event.has_prev_kv()) out += FormatKeyValue(event.prev_kv());
  out += FormatKeyValue(event.kv());
  return out;
}

std::string FormatGetJson(const etcdserverpb::RangeResponse& response) {
  Json json = Json::object();
  json["header"] = HeaderJson(response.header());
  if (response.kvs_size() > 0) {
    Json kvs = Json::array();
    for (const mvccpb::KeyValue& kv : response.kvs()) kvs.push_back(KeyValueJson(kv));
    json["kvs"] = std::move(kvs);
  }
  if (response.more()) json["more"] = true;
  if (response.count() != 0) json["count"] = response.count();
  return json.dump() + "\n";
}

std::string FormatLeaseId(int64_t id) { return Hex(static_cast<uint64_t>(id), 16); }

std::string FormatLeaseGrant(const etcdserverpb::LeaseGrantResponse& response) {
  return "lease " + FormatLeaseId(response.id()) + " granted with TTL(" +
         std::to_string(response.ttl()) + "s)\n";
}

std::string FormatLeaseRevoke(int64_t id) { return "lease " + FormatLeaseId(id) + " revoked\n"; }

std::string FormatLeaseKeepAlive(const etcdserverpb::LeaseKeepAliveResponse& response) {
  return "lease " + FormatLeaseId(response.id()) + " keepalived with TTL(" +
         std::to_string(response.ttl()) + ")\n";
}

std::string FormatLeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& response) {
  if (response.grantedttl() == 0 && response.ttl() == -1) {
    return "lease " + FormatLeaseId(response.id()) + " already expired\n";
  }
  std::string out = "lease " + FormatLeaseId(response.id()) + " granted with TTL(" +
                    std::to_string(response.grantedttl()) + "s), remaining(" +
                    std::to_string(response.ttl()) + "s)";
  if (response.keys_size() > 0) {
    out += ", attached keys([";
    for (int i = 0; i < response.keys_size(); ++i) out += (i ? " " : "") + response.keys(i);
    out += "])";
  }
  return out + "\n";
}

std::string FormatLeaseList(const etcdserverpb::LeaseLeasesResponse& response) {
  std::string out = "found " + std::to_string(response.leases_size()) + " leases\n";
  for (const auto& lease : response.leases()) out += FormatLeaseId(lease.id()) + "\n";
  return out;
}

std::string FormatMemberList(const etcdserverpb::MemberListResponse& response) {
  std::string out;
  for (const etcdserverpb::Member& m : response.members()) {
    out += Hex(m.id()) + ", " + (m.name().empty() ? "unstarted" : "started") + ", " + m.name() +
           ", " + JoinUrls(m.peerurls()) + ", " + JoinUrls(m.clienturls()) + ", " +
           (m.islearner() ? "true" : "false") + "\n";
  }
  return out;
}

std::string FormatMemberAdd(const etcdserverpb::MemberAddResponse& response,
                            std::string_view name) {
  std::string out = "Member " + HexSpaced(response.member().id()) + " added to cluster " +
                    HexSpaced(response.header().cluster_id()) + "\n";
  std::string cluster;
  for (const etcdserverpb::Member& m : response.members()) {
    const bool is_new = m.id() == response.member().id();
    const std::string member_name = is_new ? std::string(name) : m.name();
    if (member_name.empty()) continue;  // another member that has not started yet
    for (const std::string& url : m.peerurls()) {
      cluster += (cluster.empty() ? "" : ",") + member_name + "=" + url;
    }
  }
  out += "\nETCD_NAME=\"" + std::string(name) + "\"\n";
  out += "ETCD_INITIAL_CLUSTER=\"" + cluster + "\"\n";
  out += "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"" + JoinUrls(response.member().peerurls()) + "\"\n";
  out += "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n";
  return out;
}

std::string FormatStatusSimple(const std::vector<EndpointStatus>& rows) {
  std::string out;
  for (const EndpointStatus& row : rows) {
    const std::vector<std::string> cells = StatusCells(row);
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? ", " : "") + cells[i];
    out += "\n";
  }
  return out;
}

std::string FormatStatusTable(const std::vector<EndpointStatus>& rows) {
  const std::vector<std::string> header = {"ENDPOINT",  "ID",         "VERSION",
                                           "DB SIZE",   "IS LEADER",  "IS LEARNER",
                                           "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX",
                                           "ERRORS"};
  std::vector<std::vector<std::string>> table = {header};
  for (const EndpointStatus& row : rows) table.push_back(StatusCells(row));
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& r : table) {
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  }
  std::string rule = "+";
  for (size_t w : widths) rule += std::string(w + 2, '-') + "+";
  rule += "\n";
  const auto line = [&](const std::vector<std::string>& r, bool center) {
    std::string out = "|";
    for (size_t i = 0; i < r.size(); ++i) {
      const size_t pad = widths[i] - r[i].size();
      // As etcdctl's table writer: headers centered, cells right-aligned.
      const size_t left = center ? pad / 2 : pad;
      out += " " + std::string(left, ' ') + r[i] + std::string(pad - left, ' ') + " |";
    }
    return out + "\n";
  };
  std::string out = rule + line(table[0], true) + rule;
  for (size_t i = 1; i < table.size(); ++i) out += line(table[i], false);
  return out + rule;
}

std::string FormatStatusJson(const std::vector<EndpointStatus>& rows) {
  Json json = Json::array();
  for (const EndpointStatus& row : rows) {
    Json entry = Json::object();
    entry["Endpoint"] = row.endpoint;
    if (!row.error.ok()) {
      entry["Error"] = row.error.message();
      json.push_back(std::move(entry));
      continue;
    }
    const etcdserverpb::StatusResponse& s = row.status;
    Json status = Json::object();
    status["header"] = HeaderJson(s.header());
    if (!s.version().empty()) status["version"] = s.version();
    if (s.dbsize() != 0) status["dbSize"] = s.dbsize();
    if (s.leader() != 0) status["leader"] = s.leader();
    if (s.raftindex() != 0) status["raftIndex"] = s.raftindex();
    if (s.raftterm() != 0) status["raftTerm"] = s.raftterm();
    if (s.raftappliedindex() != 0) status["raftAppliedIndex"] = s.raftappliedindex();
    if (s.errors_size() > 0)
      status["errors"] = std::vector<std::string>(s.errors().begin(), s.errors().end());
    if (s.dbsizeinuse() != 0) status["dbSizeInUse"] = s.dbsizeinuse();
    if (s.islearner()) status["isLearner"] = true;
    entry["Status"] = std::move(status);
    json.push_back(std::move(entry));
  }
  return json.dump() + "\n";
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 10) return std::to_string(bytes) + " B";
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  const int exponent = std::min(
      6, static_cast<int>(std::floor(std::log(static_cast<double>(bytes)) / std::log(1000.0))));
  const double value =
      std::floor(static_cast<double>(bytes) / std::pow(1000.0, exponent) * 10 + 0.5) / 10;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, value < 10 ? "%.1f %s" : "%.0f %s", value, kUnits[exponent]);
  return buffer;
}

}  // namespace ballot::client
