// Metrics: counters, gauges and fixed-bucket histograms, and a registry that renders them in the
// Prometheus text exposition format (version 0.0.4), which `ballot serve` serves on /metrics.
//
// Instruments are updated on hot paths (the engine thread, the apply thread, request threads):
// every update is one or two lock-free atomic operations, never a lock. The registry owns the
// instruments; a pointer or reference to one stays valid as long as the registry. Registration and
// rendering take the registry's mutex.
//
// Callback families are evaluated when the registry renders (for values another component already
// keeps, such as the applied index or the transport's drop counts). A callback must stay callable
// as long as the registry may render: stop whatever renders (the HTTP server) before destroying
// what a callback reads.
//
// A bad name, a name registered twice with the same labels, or a name reused with another type is
// a programming error and stops the process (BALLOT_ASSERT).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ballot::metrics {

// Label name -> value, in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type { kCounter, kGauge, kHistogram };

// A monotonically increasing count.
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Sub(double v) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in fixed buckets. An observation v falls in the first bucket whose upper
// bound is >= v (Prometheus' `le` is inclusive), or in the implicit +Inf bucket.
class Histogram {
 public:
  // `upper_bounds` must be finite and strictly increasing (asserted); the +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // Per upper bound, then +Inf (== count).
    uint64_t count = 0;
    double sum = 0;
  };
  // Consistent per bucket; `count` is the +Inf bucket, so the rendered buckets and count always
  // agree. `sum` may lag the counts by observations in flight.
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // upper_bounds_.size() + 1, not cumulative.
  std::atomic<double> sum_{0};
};

// start, start*factor, ..., `count` bounds (etcd's WAL fsync buckets: 0.001, 2, 14).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// One value of a callback family.
struct Sample {
  Labels labels;
  double value = 0;
};
using Collect = std::function<std::vector<Sample>()>;

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each returns the instrument for (name, labels), owned by the registry. Several label sets may
  // share a name; they share its help text and type.
  Counter& AddCounter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& AddGauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& AddHistogram(std::string_view name, std::string_view help,
                          std::vector<double> upper_bounds, Labels labels = {});
  // A counter or gauge family whose samples `collect` computes at each Render, on the rendering
  // thread. It must be quick and must not call back into the registry.
  void AddCallback(std::string_view name, std::string_view help, Type type, Collect collect);

  // The text exposition format: families sorted by name, each with # HELP and # TYPE lines; a
  // family with no samples is left out.
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    Type type = Type::kCounter;
    // Instruments in registration order (exactly one of the pointers is set).
    struct Child {
      Labels labels;
      std::unique_ptr<Counter> counter;
      std::unique_ptr<Gauge> gauge;
      std::unique_ptr<Histogram> histogram;
    };
    std::vector<Child> children;
    std::vector<Collect> callbacks;
  };
  Family& FamilyLocked(std::string_view name, std::string_view help, Type type,
                       const Labels* labels);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;  // Guarded by mu_.
};

// Formatting helpers (exposed for tests).
// "3" for integral values below 2^53, the shortest round-trip form otherwise; "+Inf", "-Inf",
// "NaN".
std::string FormatValue(double v);
// `\` -> `\\`, `"` -> `\"`, newline -> `\n`.
std::string EscapeLabelValue(std::string_view v);
// `\` -> `\\`, newline -> `\n`.
std::string EscapeHelp(std::string_view v);
// [a-zA-Z_:][a-zA-Z0-9_:]* (label names: no ':').
bool ValidMetricName(std::string_view name);
bool ValidLabelName(std::string_view name);

}  // namespace ballot::metrics
