#include "metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "base/assert.h"

namespace ballot::metrics {

namespace {

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  BALLOT_UNREACHABLE("metric type");
}

// {a="x",b="y"} with `extra` (le="...") last; "" when there is nothing to render.
std::string RenderLabels(const Labels& labels, const std::pair<std::string, std::string>* extra) {
  if (labels.empty() && extra == nullptr) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& name, const std::string& value) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += EscapeLabelValue(value);
    out += '"';
  };
  for (const auto& [name, value] : labels) add(name, value);
  if (extra != nullptr) add(extra->first, extra->second);
  out += '}';
  return out;
}

void RenderLine(std::string& out, std::string_view name, const Labels& labels, double value,
                const std::pair<std::string, std::string>* extra = nullptr) {
  out += name;
  out += RenderLabels(labels, extra);
  out += ' ';
  out += FormatValue(value);
  out += '\n';
}

void RenderHistogram(std::string& out, const std::string& name, const Labels& labels,
                     const Histogram& h) {
  const Histogram::Snapshot snap = h.Read();
  const std::string bucket = name + "_bucket";
  for (size_t i = 0; i <= h.upper_bounds().size(); ++i) {
    const std::pair<std::string, std::string> le{
        "le", i < h.upper_bounds().size() ? FormatValue(h.upper_bounds()[i]) : "+Inf"};
    RenderLine(out, bucket, labels, static_cast<double>(snap.cumulative[i]), &le);
  }
  RenderLine(out, name + "_sum", labels, snap.sum);
  RenderLine(out, name + "_count", labels, static_cast<double>(snap.count));
}

void CheckLabels(const Labels& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    BALLOT_ASSERT(ValidLabelName(labels[i].first), "metric label name");
    BALLOT_ASSERT(labels[i].first != "le", "label `le` is reserved for histogram buckets");
    for (size_t j = 0; j < i; ++j) BALLOT_ASSERT(labels[j].first != labels[i].first);
  }
}

}  // namespace

// ---- Histogram ----

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      buckets_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    BALLOT_ASSERT(std::isfinite(upper_bounds_[i]), "histogram bounds must be finite");
    BALLOT_ASSERT(i == 0 || upper_bounds_[i - 1] < upper_bounds_[i],
                  "histogram bounds must increase");
  }
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;  // It has no bucket; a NaN duration is a caller's bug, not data.
  // Bucket counts are few (tens): lower_bound is the first bound >= v, i.e. `le` inclusive.
  const size_t i = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) - upper_bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snap;
  snap.cumulative.reserve(upper_bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    snap.cumulative.push_back(total);
  }
  snap.count = total;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  BALLOT_ASSERT(start > 0 && factor > 1 && count >= 1, "exponential buckets");
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i) {
    out.push_back(v);
    v *= factor;
  }
  return out;
}

// ---- Registry ----

Registry::Family& Registry::FamilyLocked(std::string_view name, std::string_view help, Type type,
                                         const Labels* labels) {
  BALLOT_ASSERT(ValidMetricName(name), "metric name");
  if (labels != nullptr) CheckLabels(*labels);
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.help = std::string(help);
    it->second.type = type;
  }
  Family& family = it->second;
  BALLOT_ASSERT(family.type == type, "metric registered again with another type");
  if (labels != nullptr) {
    for (const auto& child : family.children) {
      BALLOT_ASSERT(child.labels != *labels, "metric registered twice with the same labels");
    }
  }
  return family;
}

Counter& Registry::AddCounter(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = FamilyLocked(name, help, Type::kCounter, &labels);
  Family::Child child;
  child.labels = std::move(labels);
  child.counter = std::make_unique<Counter>();
  Counter& out = *child.counter;
  family.children.push_back(std::move(child));
  return out;
}

Gauge& Registry::AddGauge(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = FamilyLocked(name, help, Type::kGauge, &labels);
  Family::Child child;
  child.labels = std::move(labels);
  child.gauge = std::make_unique<Gauge>();
  Gauge& out = *child.gauge;
  family.children.push_back(std::move(child));
  return out;
}

Histogram& Registry::AddHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> upper_bounds, Labels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = FamilyLocked(name, help, Type::kHistogram, &labels);
  Family::Child child;
  child.labels = std::move(labels);
  child.histogram = std::make_unique<Histogram>(std::move(upper_bounds));
  Histogram& out = *child.histogram;
  family.children.push_back(std::move(child));
  return out;
}

void Registry::AddCallback(std::string_view name, std::string_view help, Type type,
                           Collect collect) {
  BALLOT_ASSERT(type != Type::kHistogram, "callback families are counters or gauges");
  BALLOT_ASSERT(collect != nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  FamilyLocked(name, help, type, nullptr).callbacks.push_back(std::move(collect));
}

std::string Registry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    std::string body;
    for (const auto& child : family.children) {
      if (child.counter) {
        RenderLine(body, name, child.labels, static_cast<double>(child.counter->value()));
      } else if (child.gauge) {
        RenderLine(body, name, child.labels, child.gauge->value());
      } else {
        RenderHistogram(body, name, child.labels, *child.histogram);
      }
    }
    for (const auto& collect : family.callbacks) {
      for (const Sample& s : collect()) {
        CheckLabels(s.labels);
        RenderLine(body, name, s.labels, s.value);
      }
    }
    if (body.empty()) continue;
    out += "# HELP " + name + " " + EscapeHelp(family.help) + "\n";
    out += "# TYPE " + name + " " + std::string(TypeName(family.type)) + "\n";
    out += body;
  }
  return out;
}

// ---- Formatting ----

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  constexpr double kExactIntegerMax = 9007199254740992.0;  // 2^53
  if (v == std::trunc(v) && std::fabs(v) < kExactIntegerMax) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  BALLOT_ASSERT(ec == std::errc());
  return std::string(buf, end);
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {
bool ValidName(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (colon && c == ':') || (i > 0 && digit))) return false;
  }
  return true;
}
}  // namespace

bool ValidMetricName(std::string_view name) { return ValidName(name, /*colon=*/true); }
bool ValidLabelName(std::string_view name) { return ValidName(name, /*colon=*/false); }

}  // namespace ballot::metrics
