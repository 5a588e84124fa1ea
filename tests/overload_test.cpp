// The reader under stress: a flood against a slow handler, a handler that
// throws, and many create/destroy cycles. Real kernel, real rings.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "bpf_support.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using testing::count_fds;
using testing::fire_on_cpu;
using testing::rss_kib;
using tools::WriteTracer;

TEST(Overload, SlowHandlerUnderFloodAccountsForEveryRecord) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  std::uint64_t received = 0, lost = 0;
  auto slow = [&](const Sample&) {
    ++received;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  // One page (128 records) on CPU 0: the producer outruns the handler many times over.
  Reader reader(tracer.events_map(), slow, [&](int, std::uint64_t n) { lost += n; },
                Options{.pages_per_cpu = 1, .cpus = {0}});

  constexpr int kFired = 20000;
  std::atomic<bool> done{false};
  std::atomic<int> fire_errors{0};
  std::thread producer([&] {
    for (int i = 0; i < kFired; ++i)
      if (fire_on_cpu(tracer.raw_tracepoint_fd(), 0) != 0) ++fire_errors;
    done = true;
  });
  while (!done) ASSERT_TRUE(reader.poll(milliseconds(10)).ok());
  producer.join();
  ASSERT_EQ(fire_errors, 0);
  ASSERT_TRUE(reader.consume().ok());
  // The kernel writes the pending PERF_RECORD_LOST with the next record that fits.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());

  EXPECT_EQ(tracer.attempts(), kFired + 1u);
  EXPECT_GT(lost, 0u) << "the flood never filled the ring";
  EXPECT_EQ(received + lost, tracer.attempts());
  EXPECT_EQ(lost, tracer.failures());
}

TEST(Overload, ThrowingHandlerReachesTheCallerAndThenReadingGoesOn) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  int calls = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) {
    if (++calls == 2) throw std::runtime_error("handler failed");
  });
  for (int i = 0; i < 5; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  EXPECT_THROW((void)reader.consume(), std::runtime_error);
  // The record that threw counts as consumed; the other three come next.
  const auto rest = reader.consume();
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, 3u);
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(reader.total_stats().records, 5u);
  // And the ring keeps working.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  const auto more = reader.poll(milliseconds(1000));
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(*more, 1u);
}

// A handler that throws while the loop serves rings left with records by
// their budget: the rest, of that ring and of the rings not served yet, still
// comes without a new wakeup (light traffic sets no timer, so a ring
// forgotten there would wait for the next record).
TEST(Overload, ThrowingHandlerOnALeftOverBudgetLeavesNoRecordBehind) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  constexpr int kPerCpu = 50;
  int calls = 0;
  Reader reader(
      tracer.events_map(),
      [&](const Sample&) {
        // The first poll takes 10 from each ring; this is in the second,
        // which serves what the budget left, in the first ring it serves.
        if (++calls == 25) throw std::runtime_error("handler failed");
      },
      {}, Options{.cpus = {0, 1}, .ring_budget = 10});
  for (int i = 0; i < kPerCpu; ++i)
    for (int cpu : {0, 1}) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), cpu), 0);
  bool thrown = false;
  for (int i = 0; i < 15 && calls < 2 * kPerCpu; ++i) {  // about 6 polls take them all
    try {
      const auto start = std::chrono::steady_clock::now();
      ASSERT_TRUE(reader.poll(milliseconds(1500)).ok());
      EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000))
          << "records left by the budget waited for the timeout";
    } catch (const std::runtime_error&) {
      thrown = true;
    }
  }
  EXPECT_TRUE(thrown);
  EXPECT_EQ(calls, 2 * kPerCpu);
}

TEST(Overload, ThousandCreateDestroyCyclesLeaveNoFdsOrMemory) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  auto cycle = [&] {
    Reader reader(tracer.events_map(), [](const Sample&) {}, {}, Options{.pages_per_cpu = 8});
    ASSERT_TRUE(reader.consume().ok());
  };
  for (int i = 0; i < 100; ++i) cycle();  // warm up the allocator
  const int fds = count_fds();
  const long rss = rss_kib();
  for (int i = 0; i < 1000; ++i) cycle();
  EXPECT_EQ(count_fds(), fds);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer's allocator keeps freed memory on purpose; LeakSanitizer checks leaks there.
#else
  EXPECT_LT(rss_kib() - rss, 256) << "resident memory grew over 1000 cycles";
#endif
}

}  // namespace
}  // namespace perfbuf
