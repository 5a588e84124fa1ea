// Time-ordered delivery: the merge on fake rings whose records appear when the
// test says (so a ring can be held back on purpose), and on the real kernel.
#include <gtest/gtest.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <thread>
#include <vector>

#include "bpf_support.h"
#include "poller.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;

std::uint64_t monotonic_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ull + t.tv_nsec;
}

struct Delivered {
  std::vector<std::uint64_t> times;
  std::vector<int> rings;
  std::vector<bool> late;
};

// A ring with timestamped records that become visible when the test shows them.
class FakeTimedRing final : public detail::PolledRing {
 public:
  FakeTimedRing(int id, Delivered& out)
      : PolledRing(id, 0), out_(out), fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~FakeTimedRing() override { close(fd_); }
  void show(std::uint64_t time) { visible_.push_back(time); }

  int fd() const noexcept override { return fd_; }
  bool readable() const noexcept override { return !visible_.empty(); }
  std::uint64_t fill() const noexcept override { return visible_.size() * 16; }
  void drain(detail::Pass& pass, std::uint64_t budget) override {
    note_fill(fill());
    for (std::uint64_t n = 0; n < budget && !visible_.empty(); ++n) take_next(pass, false);
  }
  bool timed() const noexcept override { return true; }
  std::optional<std::uint64_t> next_time(detail::Pass&) override {
    std::uint64_t count;  // the wakeup is used up once looked at, as perf's is
    [[maybe_unused]] const ssize_t n = read(fd_, &count, sizeof count);
    if (visible_.empty()) return std::nullopt;
    return visible_.front();
  }
  void take_next(detail::Pass& pass, bool late) override {
    out_.times.push_back(visible_.front());
    out_.rings.push_back(cpu());
    out_.late.push_back(late);
    if (late) ++stats.late;
    visible_.pop_front();
    ++pass.records;
  }

 private:
  Delivered& out_;
  int fd_;
  std::deque<std::uint64_t> visible_;
};

detail::LoopOptions ordered_options(std::chrono::microseconds window) {
  return {.max_delay = milliseconds(10), .busy_poll = {}, .ring_budget = 4096, .ordered = true,
          .window = window, .clock = CLOCK_MONOTONIC};
}

TEST(OrderedMerge, RecordsOfAllRingsComeOutOldestFirst) {
  Delivered out;
  FakeTimedRing a(0, out), b(1, out), c(2, out);
  detail::Poller poller(ordered_options(std::chrono::microseconds(0)));
  for (auto* r : {&a, &b, &c}) poller.add(*r);
  const std::uint64_t t = monotonic_ns() - 1000000;
  for (std::uint64_t i : {0, 3, 6, 9}) a.show(t + i);
  for (std::uint64_t i : {1, 4, 7}) b.show(t + i);
  for (std::uint64_t i : {2, 5, 8}) c.show(t + i);
  ASSERT_TRUE(poller.consume().ok());
  ASSERT_EQ(out.times.size(), 10u);
  for (std::uint64_t i = 0; i < 10; ++i) EXPECT_EQ(out.times[i], t + i);
  EXPECT_EQ(out.rings, (std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(std::count(out.late.begin(), out.late.end(), true), 0);
}

TEST(OrderedMerge, RecordsYoungerThanTheWindowWait) {
  Delivered out;
  FakeTimedRing a(0, out);
  detail::Poller poller(ordered_options(std::chrono::milliseconds(50)));
  poller.add(a);
  const std::uint64_t now = monotonic_ns();
  a.show(now - 100000000);  // 100 ms old: out at once
  a.show(now);              // waits for the window
  const std::uint64_t one = 1;  // as the kernel's wakeup would
  ASSERT_EQ(write(a.fd(), &one, sizeof one), 8);
  auto r = poller.poll(milliseconds(0), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(out.times.size(), 1u);
  // It comes out once the window has passed, within max_delay of that.
  for (int i = 0; i < 100 && out.times.size() < 2; ++i) ASSERT_TRUE(poller.poll(milliseconds(10), nullptr).ok());
  ASSERT_EQ(out.times.size(), 2u);
  EXPECT_GE(monotonic_ns(), now + 50000000);
}

// A held record needs no flush timer: the pass comes when the window has
// passed over it (here max_delay is a minute and nothing else wakes the poll).
TEST(OrderedMerge, AHeldRecordGoesOutWhenTheWindowHasPassedNotAtTheFlush) {
  Delivered out;
  FakeTimedRing a(0, out);
  detail::LoopOptions options = ordered_options(std::chrono::milliseconds(20));
  options.max_delay = std::chrono::minutes(1);
  detail::Poller poller(options);
  poller.add(a);
  const std::uint64_t now = monotonic_ns();
  a.show(now);
  const std::uint64_t one = 1;  // as the kernel's wakeup would
  ASSERT_EQ(write(a.fd(), &one, sizeof one), 8);
  ASSERT_TRUE(poller.poll(milliseconds(0), nullptr).ok());
  EXPECT_EQ(out.times.size(), 0u);  // younger than the window
  auto r = poller.poll(milliseconds(10000), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1u) << "the held record waited for the flush";
  EXPECT_GE(monotonic_ns(), now + 20000000);
}

TEST(OrderedMerge, ARingHeldBackDeliversItsRecordsLateAndCountsThemExactly) {
  Delivered out;
  FakeTimedRing a(0, out), b(1, out);
  detail::Poller poller(ordered_options(std::chrono::microseconds(0)));
  poller.add(a);
  poller.add(b);
  const std::uint64_t t = monotonic_ns() - 1000000;
  for (std::uint64_t i : {0, 2, 4, 6}) a.show(t + i);
  b.show(t + 1);  // b shows one record; its next three are held back
  ASSERT_TRUE(poller.consume().ok());
  ASSERT_EQ(out.times.size(), 5u);  // 0 1 2 4 6
  for (std::uint64_t i : {3, 5, 7}) b.show(t + i);  // 3 and 5 are older than 6: late
  a.show(t + 8);
  ASSERT_TRUE(poller.consume().ok());
  ASSERT_EQ(out.times.size(), 9u);
  EXPECT_EQ(out.times, (std::vector<std::uint64_t>{t, t + 1, t + 2, t + 4, t + 6, t + 3, t + 5,
                                                   t + 7, t + 8}));
  EXPECT_EQ(out.late, (std::vector<bool>{false, false, false, false, false, true, true, false,
                                         false}));
  EXPECT_EQ(b.stats.late, 2u);
  EXPECT_EQ(a.stats.late, 0u);
}

TEST(OrderedMerge, BudgetBoundsOnePassAndTheRestFollowsWithoutWaiting) {
  Delivered out;
  FakeTimedRing a(0, out), b(1, out);
  detail::LoopOptions o = ordered_options(std::chrono::microseconds(0));
  o.ring_budget = 3;
  o.max_delay = std::chrono::hours(1);
  detail::Poller poller(o);
  poller.add(a);
  poller.add(b);
  const std::uint64_t t = monotonic_ns() - 1000000;
  for (std::uint64_t i = 0; i < 20; ++i) (i % 2 ? b : a).show(t + i);
  const std::uint64_t one = 1;  // as the kernel's wakeup would
  ASSERT_EQ(write(a.fd(), &one, sizeof one), 8);
  auto first = poller.poll(milliseconds(1000), nullptr);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 6u);  // 3 per ring
  for (int i = 0; i < 10 && out.times.size() < 20; ++i) {
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(poller.poll(milliseconds(1000), nullptr).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500)) << "waited for more";
  }
  ASSERT_EQ(out.times.size(), 20u);
  for (std::uint64_t i = 0; i < 20; ++i) EXPECT_EQ(out.times[i], t + i);
}

}  // namespace
}  // namespace perfbuf

namespace perfbuf {
namespace {

// Writers on every CPU at once; records come out in time order.
TEST(OrderedKernel, WritersOnEveryCpuComeOutInTimeOrder) {
  REQUIRE_BPF();
  tools::WriteTracer tracer({});
  std::vector<std::uint64_t> times;
  std::uint64_t late = 0;
  Reader reader(tracer.events_map(), [&](const Sample& s) {
    times.push_back(s.time_ns);
    late += s.late;
  }, {}, Options{.ordered = true, .reorder_window = std::chrono::milliseconds(20)});
  const std::vector<int> cpus = online_cpus();
  constexpr int kPerCpu = 2000;
  std::vector<std::thread> writers;
  for (int cpu : cpus)
    writers.emplace_back([&, cpu] {
      for (int i = 0; i < kPerCpu; ++i) testing::fire_on_cpu(tracer.raw_tracepoint_fd(), cpu);
    });
  const std::size_t expected = cpus.size() * kPerCpu;
  // A poll() returns once it handed out records, which may be a few at a
  // time: bounded by time, not by the number of calls.
  const auto poll_until = [&](std::chrono::steady_clock::time_point end) {
    for (int i = 0; i < 1000000 && times.size() < expected && std::chrono::steady_clock::now() < end;
         ++i)
      ASSERT_TRUE(reader.poll(milliseconds(20)).ok());
  };
  poll_until(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  for (auto& w : writers) w.join();
  poll_until(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  ASSERT_EQ(times.size(), expected);
  // Flagged late: exactly the records older than one handed out before them.
  std::size_t behind = 0;
  for (std::size_t i = 1, newest = 0; i < times.size(); ++i) {
    if (times[i] < times[newest]) ++behind;
    else newest = i;
  }
  EXPECT_EQ(behind, late) << "every record older than one before it is flagged late";
  EXPECT_EQ(behind, 0u);
  EXPECT_EQ(reader.total_stats().late, late);
}

// Records that wait in two CPUs' rings with their times interleaved: a reader
// that drains ring by ring hands out all of one CPU's first, whatever the
// scheduler does; ordered hands them out oldest first.
TEST(OrderedKernel, InterleavedRecordsWaitingOnTwoCpusComeOutInTimeOrder) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(other);
  tools::WriteTracer tracer({});
  std::vector<std::uint64_t> times;
  std::vector<int> cpus;
  Reader reader(tracer.events_map(), [&](const Sample& s) {
    times.push_back(s.time_ns);
    cpus.push_back(s.cpu);
  }, {}, Options{.ordered = true, .reorder_window = std::chrono::milliseconds(20)});
  constexpr int kPerCpu = 500;  // well within the ring that wakes per record
  for (int i = 0; i < kPerCpu; ++i)
    for (int cpu : {0, *other}) ASSERT_EQ(testing::fire_on_cpu(tracer.raw_tracepoint_fd(), cpu), 0);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int i = 0; i < 100000 && times.size() < 2 * kPerCpu && std::chrono::steady_clock::now() < end;
       ++i)
    ASSERT_TRUE(reader.poll(milliseconds(20)).ok());
  ASSERT_EQ(times.size(), 2u * kPerCpu);
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end())) << "handed out ring by ring";
  // The CPUs alternate, as they were written.
  for (std::size_t i = 0; i < cpus.size(); ++i)
    ASSERT_EQ(cpus[i], i % 2 ? *other : 0) << "record " << i;
  EXPECT_EQ(reader.total_stats().late, 0u);
}

TEST(OrderedKernel, OptionsAreChecked) {
  for (Options o : {Options{.ordered = true, .clock = kPerfClock},
                    Options{.ordered = true, .reorder_window = std::chrono::seconds(11)}}) {
    try {
      Reader reader(-1, [](const Sample&) {}, {}, o);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.errnum(), EINVAL) << e.what();
    }
  }
}

}  // namespace
}  // namespace perfbuf
