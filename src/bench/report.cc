#include "bench/report.h"

#include <cstdio>
#include <string>

namespace ballot::bench {

namespace {

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

constexpr struct {
  const char* name;
  double percent;
} kPercentiles[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}};

std::string Format(const char* format, auto... args) {
  char buffer[512];
  std::snprintf(buffer, sizeof buffer, format, args...);
  return buffer;
}

}  // namespace

std::string FormatText(const Report& report, const Options& options) {
  std::string out;
  out +=
      Format("workload: %s, %u clients, %u conns, %zu endpoint(s)\n", WorkloadName(report.workload),
             options.clients, options.conns, options.endpoints.size());
  out += Format("elapsed: %.3f s, ok: %llu, errors: %llu", report.elapsed_s,
                static_cast<unsigned long long>(report.ok),
                static_cast<unsigned long long>(report.errors));
  if (report.workload == Workload::kTxn) {
    out += Format(", conflicts: %llu", static_cast<unsigned long long>(report.conflicts));
  }
  if (report.workload == Workload::kWatch) {
    out += Format(", puts: %llu, watchers: %u", static_cast<unsigned long long>(report.puts),
                  options.watchers);
  }
  out += "\n";
  out += Format("throughput: %.1f %s/s\n", report.throughput(),
                report.workload == Workload::kWatch ? "events" : "ops");
  out += Format("client cpu: %.2f s", report.client_cpu_s);
  if (report.ok > 0) {
    out += Format(" (%.1f us per %s)", 1e6 * report.client_cpu_s / static_cast<double>(report.ok),
                  report.workload == Workload::kWatch ? "event" : "op");
  }
  out += "\n";
  out += "latency ms:";
  for (const auto& p : kPercentiles) {
    out += Format(" %s %.3f", p.name, Ms(report.latency.Percentile(p.percent)));
  }
  out +=
      Format(" max %.3f mean %.3f\n", Ms(report.latency.max_ns()), report.latency.mean_ns() / 1e6);
  for (const auto& [message, count] : report.error_samples) {
    out += Format("error x%llu: %s\n", static_cast<unsigned long long>(count), message.c_str());
  }
  return out;
}

nlohmann::json ToJson(const Report& report, const Options& options) {
  nlohmann::json latency = {
      {"max", Ms(report.latency.max_ns())},
      {"mean", report.latency.mean_ns() / 1e6},
  };
  for (const auto& p : kPercentiles) latency[p.name] = Ms(report.latency.Percentile(p.percent));
  nlohmann::json json = {
      {"workload", WorkloadName(report.workload)},
      {"clients", options.clients},
      {"conns", options.conns},
      {"endpoints", options.endpoints},
      {"elapsed_s", report.elapsed_s},
      {"client_cpu_s", report.client_cpu_s},
      {"ok", report.ok},
      {"errors", report.errors},
      {"throughput", report.throughput()},
      {"latency_ms", latency},
  };
  if (report.workload == Workload::kTxn) json["conflicts"] = report.conflicts;
  if (report.workload == Workload::kWatch) {
    json["puts"] = report.puts;
    json["watchers"] = options.watchers;
  }
  nlohmann::json samples = nlohmann::json::object();
  for (const auto& [message, count] : report.error_samples) samples[message] = count;
  json["error_samples"] = samples;
  return json;
}

}  // namespace ballot::bench
