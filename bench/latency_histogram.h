// Delivery delays of every record in bounded memory: a log-linear histogram.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

#include <time.h>

namespace perfbuf::bench {

// How long ago `stamp_ns` was, for a record stamped by bpf_ktime_get_ns()
// (CLOCK_MONOTONIC); 0 for a stamp not yet reached.
inline std::uint64_t ns_since(std::uint64_t stamp_ns) {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  const std::uint64_t now_ns = std::uint64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
  return now_ns > stamp_ns ? now_ns - stamp_ns : 0;
}

// Values (nanoseconds) below 2^kSubBits are counted exactly; above, each power
// of two is split into 2^kSubBits buckets of equal width, so a bucket is at
// most 1/128 of its lower bound wide and the midpoint reported for it is
// within 0.4% of every value in it. The maximum is kept exactly.
// 7424 counters (58 KiB) cover every 64-bit value.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSub = std::uint64_t(1) << kSubBits;
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kSub;

  void record(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++count_;
    max_ = std::max(max_, ns);
  }
  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }

  // What reports give of the values, in microseconds.
  struct Summary {
    double p50_us = 0, p99_us = 0, max_us = 0;
  };
  Summary summary_us() const {
    return {percentile(0.50) / 1000, percentile(0.99) / 1000, static_cast<double>(max_) / 1000};
  }

  // The value below which a fraction p (0..1) of the records lie: the
  // midpoint of the bucket holding the record of rank ceil(p * count), never
  // above the maximum. 0 without records.
  double percentile(double p) const {
    if (count_ == 0) return 0;
    if (p >= 1) return static_cast<double>(max_);
    const std::uint64_t rank =
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p * count_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(midpoint(i), static_cast<double>(max_));
    }
    return static_cast<double>(max_);
  }

  static std::size_t index(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    const int e = std::bit_width(v) - 1;  // kSubBits .. 63
    const std::uint64_t mantissa = v >> (e - kSubBits);  // kSub .. 2 * kSub - 1
    return static_cast<std::size_t>((e - kSubBits + 1) * kSub + (mantissa - kSub));
  }
  // The bucket's values: [lower, lower + width).
  static std::uint64_t lower(std::size_t i) {
    if (i < kSub) return i;
    const int e = static_cast<int>(i / kSub) - 1 + kSubBits;
    return (kSub + i % kSub) << (e - kSubBits);
  }
  static std::uint64_t width(std::size_t i) {
    return i < kSub ? 1 : std::uint64_t(1) << (i / kSub - 1);
  }
  static double midpoint(std::size_t i) {
    return i < kSub ? static_cast<double>(i) : lower(i) + (width(i) - 1) / 2.0;
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace perfbuf::bench
