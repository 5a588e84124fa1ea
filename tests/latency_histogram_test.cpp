// LatencyHistogram: the bench's and trace's delivery delays (p50/p99/max and
// the met/missed lines built on them) in bounded memory.
#include <gtest/gtest.h>

#include "latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace perfbuf::bench {
namespace {

using H = LatencyHistogram;

// The value of rank ceil(p * n) among `values`, as an exact percentile would give.
std::uint64_t exact_percentile(std::vector<std::uint64_t> values, double p) {
  std::sort(values.begin(), values.end());
  const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(p * values.size())));
  return values[rank - 1];
}

TEST(LatencyHistogram, EveryValueFallsInTheBucketThatCoversIt) {
  std::vector<std::uint64_t> values = {0, 1, 126, 127, 128, 129, 255, 256, 257, 1000, 999999,
                                       std::uint64_t{1} << 32, (std::uint64_t{1} << 63) - 1,
                                       std::uint64_t{1} << 63, std::numeric_limits<std::uint64_t>::max()};
  std::mt19937_64 random(42);
  for (int i = 0; i < 10000; ++i) values.push_back(random() >> (random() % 64));
  for (const std::uint64_t v : values) {
    const std::size_t i = H::index(v);
    ASSERT_LT(i, H::kBuckets) << v;
    EXPECT_LE(H::lower(i), v) << v;
    EXPECT_LE(v - H::lower(i), H::width(i) - 1) << v;  // (lower + width may not fit 64 bits)
  }
}

TEST(LatencyHistogram, BucketsFollowEachOtherWithoutGapsAndStayNarrow) {
  for (std::size_t i = 0; i + 1 < H::kBuckets; ++i) {
    ASSERT_EQ(H::lower(i) + H::width(i), H::lower(i + 1)) << i;
    ASSERT_EQ(H::index(H::lower(i)), i) << i;
    // A bucket's midpoint is within 0.4% of every value in it.
    if (i >= H::kSub) ASSERT_LE(double(H::width(i)) / double(H::lower(i)), 1.0 / H::kSub) << i;
  }
  EXPECT_EQ(H::lower(H::kBuckets - 1) + (H::width(H::kBuckets - 1) - 1),
            std::numeric_limits<std::uint64_t>::max());
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  H h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_EQ(h.percentile(0.50), 50.0);
  EXPECT_EQ(h.percentile(0.99), 99.0);
  EXPECT_EQ(h.percentile(0.01), 1.0);
  EXPECT_EQ(h.percentile(1.0), 100.0);
}

TEST(LatencyHistogram, PercentilesAreWithinABucketOfTheExactOnes) {
  std::mt19937_64 random(7);
  // Delays as a bench sees them: most tens of microseconds, a tail of milliseconds.
  std::lognormal_distribution<double> delays(std::log(40000.0), 1.0);
  std::vector<std::uint64_t> values;
  H h;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<std::uint64_t>(delays(random));
    values.push_back(v);
    h.record(v);
  }
  for (const double p : {0.001, 0.25, 0.5, 0.9, 0.99, 0.999}) {
    const double exact = static_cast<double>(exact_percentile(values, p));
    EXPECT_NEAR(h.percentile(p), exact, exact / H::kSub) << "p" << p;
  }
  EXPECT_EQ(h.max(), *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(h.percentile(1.0), static_cast<double>(h.max()));
}

TEST(LatencyHistogram, APercentileIsNeverAboveTheMaximum) {
  H h;
  h.record(1000001);  // in a bucket 4096 wide whose midpoint (1001471.5) is above it
  EXPECT_EQ(h.percentile(0.5), 1000001.0);
  EXPECT_EQ(h.percentile(0.99), 1000001.0);
}

TEST(LatencyHistogram, WithoutRecordsEverythingIsZero) {
  const H h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(0.5), 0.0);
  EXPECT_EQ(h.percentile(1.0), 0.0);
  const H::Summary s = h.summary_us();
  EXPECT_EQ(s.p50_us, 0.0);
  EXPECT_EQ(s.p99_us, 0.0);
  EXPECT_EQ(s.max_us, 0.0);
}

TEST(LatencyHistogram, MergedIsAsIfRecordedInOne) {
  H a, b, both;
  for (std::uint64_t v = 0; v < 5000; ++v) {
    const std::uint64_t x = v * v % 100003 * 37;
    (v % 3 ? a : b).record(x);
    both.record(x);
  }
  b.record(123456789012);  // the largest is in the one merged in
  both.record(123456789012);
  a.merge(b);
  EXPECT_EQ(a.count(), both.count());
  EXPECT_EQ(a.max(), both.max());
  for (const double p : {0.1, 0.5, 0.99}) EXPECT_EQ(a.percentile(p), both.percentile(p)) << p;
}

TEST(LatencyHistogram, SummaryIsInMicroseconds) {
  H h;
  for (int i = 0; i < 98; ++i) h.record(10000);  // 10 us
  h.record(500000);                             // the 99th: 500 us
  h.record(2000000);                            // 2 ms
  const H::Summary s = h.summary_us();
  EXPECT_NEAR(s.p50_us, 10.0, 10.0 / H::kSub);
  EXPECT_NEAR(s.p99_us, 500.0, 500.0 / H::kSub);
  EXPECT_EQ(s.max_us, 2000.0);
}

TEST(LatencyHistogram, NsSinceAStampNotYetReachedIsZero) {
  EXPECT_EQ(ns_since(std::numeric_limits<std::uint64_t>::max()), 0u);
  const std::uint64_t now_ns = ns_since(0);  // since boot: now on CLOCK_MONOTONIC
  const std::uint64_t since = ns_since(now_ns - 5000000);  // stamped 5 ms ago
  EXPECT_GE(since, 5000000u);
  EXPECT_LT(since, 5000000u + 60000000000u);  // (a test thread may be descheduled, not for a minute)
}

}  // namespace
}  // namespace perfbuf::bench
