// The metrics module: instruments, bucket placement, the Prometheus text format.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "metrics/metrics.h"

namespace ballot::metrics {
namespace {

TEST(MetricsRegistry, RendersCounterWithLabelsExactly) {
  Registry r;
  Counter& a = r.AddCounter("ballot_test_total", "Things done.", {{"to", "a1"}});
  Counter& b = r.AddCounter("ballot_test_total", "ignored: the first help wins", {{"to", "b2"}});
  a.Inc();
  a.Inc(4);
  b.Inc(7);
  EXPECT_EQ(r.Render(),
            "# HELP ballot_test_total Things done.\n"
            "# TYPE ballot_test_total counter\n"
            "ballot_test_total{to=\"a1\"} 5\n"
            "ballot_test_total{to=\"b2\"} 7\n");
}

TEST(MetricsRegistry, RendersGaugeAndSortsFamiliesByName) {
  Registry r;
  Gauge& z = r.AddGauge("z_gauge", "Last.");
  Gauge& a = r.AddGauge("a_gauge", "First.");
  z.Set(2.5);
  a.Set(3);
  a.Add(2);
  a.Sub(1);
  EXPECT_EQ(r.Render(),
            "# HELP a_gauge First.\n"
            "# TYPE a_gauge gauge\n"
            "a_gauge 4\n"
            "# HELP z_gauge Last.\n"
            "# TYPE z_gauge gauge\n"
            "z_gauge 2.5\n");
}

TEST(MetricsRegistry, RendersHistogramWithLabelsExactly) {
  Registry r;
  Histogram& h = r.AddHistogram("op_seconds", "Op latency.", {0.5, 1, 2}, {{"op", "put"}});
  h.Observe(0.25);
  h.Observe(0.5);  // `le` is inclusive: the 0.5 bucket.
  h.Observe(1.5);
  h.Observe(10);  // +Inf only.
  EXPECT_EQ(r.Render(),
            "# HELP op_seconds Op latency.\n"
            "# TYPE op_seconds histogram\n"
            "op_seconds_bucket{op=\"put\",le=\"0.5\"} 2\n"
            "op_seconds_bucket{op=\"put\",le=\"1\"} 2\n"
            "op_seconds_bucket{op=\"put\",le=\"2\"} 3\n"
            "op_seconds_bucket{op=\"put\",le=\"+Inf\"} 4\n"
            "op_seconds_sum{op=\"put\"} 12.25\n"
            "op_seconds_count{op=\"put\"} 4\n");
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  Registry r;
  r.AddGauge("g", "Line one\\two\nthree.", {{"path", "C:\\x \"q\"\nend"}}).Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP g Line one\\\\two\\nthree.\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\x \\\"q\\\"\\nend\"} 1\n");
}

TEST(MetricsRegistry, CallbackFamiliesAreEvaluatedAtRender) {
  Registry r;
  double value = 1;
  r.AddCallback("peer_failures_total", "Failures.", Type::kCounter, [&] {
    return std::vector<Sample>{{{{"To", "2"}}, value}, {{{"To", "3"}}, 2 * value}};
  });
  r.AddCallback("empty", "Nothing yet.", Type::kGauge, [] { return std::vector<Sample>{}; });
  value = 21;
  EXPECT_EQ(r.Render(),
            "# HELP peer_failures_total Failures.\n"
            "# TYPE peer_failures_total counter\n"
            "peer_failures_total{To=\"2\"} 21\n"
            "peer_failures_total{To=\"3\"} 42\n");
}

TEST(MetricsFormat, Values) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0.001), "0.001");
  EXPECT_EQ(FormatValue(8.192), "8.192");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
}

TEST(MetricsFormat, Names) {
  EXPECT_TRUE(ValidMetricName("etcd_server_has_leader"));
  EXPECT_TRUE(ValidMetricName("a:b_c9"));
  EXPECT_FALSE(ValidMetricName("9abc"));
  EXPECT_FALSE(ValidMetricName("a-b"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_TRUE(ValidLabelName("To"));
  EXPECT_FALSE(ValidLabelName("a:b"));
}

TEST(MetricsHistogram, BucketPlacementAtAndAroundBounds) {
  // etcd's WAL fsync buckets: 0.001 * 2^k, k = 0..13.
  const std::vector<double> bounds = ExponentialBuckets(0.001, 2, 14);
  ASSERT_EQ(bounds.size(), 14u);
  EXPECT_DOUBLE_EQ(bounds.front(), 0.001);
  EXPECT_DOUBLE_EQ(bounds.back(), 8.192);
  Histogram h(bounds);
  h.Observe(0);          // bucket 0
  h.Observe(0.001);      // bucket 0 (inclusive)
  h.Observe(0.0011);     // bucket 1
  h.Observe(0.002);      // bucket 1
  h.Observe(8.192);      // bucket 13
  h.Observe(8.2);        // +Inf
  h.Observe(0.0 / 0.0);  // ignored
  const Histogram::Snapshot s = h.Read();
  ASSERT_EQ(s.cumulative.size(), 15u);
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[1], 4u);
  EXPECT_EQ(s.cumulative[12], 4u);
  EXPECT_EQ(s.cumulative[13], 5u);
  EXPECT_EQ(s.cumulative[14], 6u);
  EXPECT_EQ(s.count, 6u);
  EXPECT_NEAR(s.sum, 0.001 + 0.0011 + 0.002 + 8.192 + 8.2, 1e-12);
}

TEST(MetricsConcurrency, IncrementsFromThreadsSumExactly) {
  Registry r;
  Counter& c = r.AddCounter("c_total", "C.");
  Gauge& g = r.AddGauge("g", "G.");
  Histogram& h = r.AddHistogram("h", "H.", {1, 2});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        c.Inc();
        g.Add(1);
        h.Observe(t % 3);                     // 0 -> le 1, 1 -> le 1, 2 -> le 2
        if (i % 1000 == 0) (void)r.Render();  // Scrapes race with updates.
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(g.value(), double{kThreads} * kPerThread);
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kPerThread);
  // Threads 0,1,3,4,6,7 observe <= 1; threads 2 and 5 observe 2.
  EXPECT_EQ(s.cumulative[0], uint64_t{6} * kPerThread);
  EXPECT_EQ(s.cumulative[1], uint64_t{8} * kPerThread);
  EXPECT_EQ(s.sum, 2.0 * 2 * kPerThread + 1.0 * 3 * kPerThread);
}

TEST(MetricsRegistryDeathTest, DuplicateLabelsOrTypeClashStop) {
  EXPECT_DEATH(
      {
        Registry r;
        r.AddCounter("x_total", "X.", {{"a", "1"}});
        r.AddCounter("x_total", "X.", {{"a", "1"}});
      },
      "same labels");
  EXPECT_DEATH(
      {
        Registry r;
        r.AddCounter("x_total", "X.");
        r.AddGauge("x_total", "X.");
      },
      "another type");
}

}  // namespace
}  // namespace ballot::metrics
