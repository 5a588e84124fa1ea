// The readers the benchmark compares, behind one interface, all feeding the
// same RecordSink so that every consumer does the same work per record.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench_program.h"
#include "latency_histogram.h"

namespace perfbuf::bench {

// Counts records and measures the delivery delay of every one: its emit time
// (bpf_ktime_get_ns, CLOCK_MONOTONIC) against the clock when the handler runs,
// into a histogram of bounded size.
class RecordSink {
 public:
  void on_record(const void* data, std::size_t size);
  // Makes the count visible to the thread that reads records_published().
  void publish() { published_.store(records_, std::memory_order_relaxed); }
  std::uint64_t records_published() const { return published_.load(std::memory_order_relaxed); }
  std::uint64_t records() const { return records_; }
  const LatencyHistogram& latencies() const { return latencies_; }

 private:
  std::uint64_t records_ = 0;
  std::atomic<std::uint64_t> published_{0};
  LatencyHistogram latencies_;
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // Waits for records (at most ~100 ms) or spins once, and handles what is there.
  virtual void step() = 0;
  // Handles everything left, without waiting.
  virtual void drain() = 0;
  // Times the reader was woken by the kernel (epoll events).
  virtual std::uint64_t wakeups() const = 0;
};

// The consumers, in the order they are reported.
const std::vector<std::string>& consumer_names();
// Whether a consumer reads the BPF ring buffer rather than the perf rings.
bool reads_ringbuf(std::string_view name);
// Builds a consumer on the program's map. pages: data pages per perf ring.
std::unique_ptr<Consumer> make_consumer(std::string_view name, const BenchProgram& program,
                                        RecordSink& sink, std::size_t pages);

}  // namespace perfbuf::bench
