// The reader against the real kernel: real perf events, real BPF programs.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <bpf/bpf.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>
#include <thread>
#include <string>

#include "bpf_support.h"
#include "write_event.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using testing::count_fds;
using testing::count_perf_mappings;
using testing::fire_on_cpu;
using tools::AttachMode;
using tools::WriteTracer;

std::uint64_t monotonic_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ull + t.tv_nsec;
}

struct Received {
  std::vector<write_event> events;
  std::vector<int> cpus;
  std::uint64_t lost = 0;

  SampleHandler sample_handler() {
    return [this](const Sample& s) {
      write_event e{};
      EXPECT_TRUE(s.read(e));
      events.push_back(e);
      cpus.push_back(s.cpu);
    };
  }
  LostHandler lost_handler() {
    return [this](int, std::uint64_t n) { lost += n; };
  }
};

TEST(ReaderKernel, EveryOnlineCpuDeliversToItsOwnRing) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler(), got.lost_handler());
  const std::vector<int> cpus = online_cpus();
  ASSERT_EQ(reader.ring_count(), cpus.size());
  for (int cpu : cpus) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), cpu), 0) << "cpu " << cpu;
  ASSERT_TRUE(reader.consume().ok());

  std::map<int, int> per_cpu;
  for (std::size_t i = 0; i < got.events.size(); ++i) {
    EXPECT_EQ(got.events[i].cookie, PERFBUF_WRITE_COOKIE);
    ++per_cpu[got.cpus[i]];
  }
  for (int cpu : cpus) EXPECT_EQ(per_cpu[cpu], 1) << "cpu " << cpu;
  EXPECT_EQ(got.events.size(), cpus.size());
  for (const CpuStats& s : reader.stats()) EXPECT_EQ(s.records, 1u) << "cpu " << s.cpu;
}

TEST(ReaderKernel, DefaultRingIsHalfAMebibyteWhateverThePageSize) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {});
  EXPECT_EQ(reader.options().pages_per_cpu, default_pages_per_cpu());
  EXPECT_EQ(reader.ring_bytes(),
            std::max<std::size_t>(kDefaultRingBytes, static_cast<std::size_t>(getpagesize())));
}

TEST(ReaderKernel, ChildDoingKWritesYieldsExactlyKEvents) {
  REQUIRE_BPF();
  constexpr int kWrites = 1000;
  testing::WritingChild child(kWrites);
  WriteTracer tracer({.only_tgid = static_cast<std::uint32_t>(child.pid()), .ignore_tgid = 0});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler(), got.lost_handler());
  std::vector<std::string> notes;
  tracer.attach(AttachMode::automatic, notes);
  const pid_t pid = child.pid();
  ASSERT_EQ(child.release_and_wait(), 0);
  tracer.detach();
  ASSERT_TRUE(reader.consume().ok());

  EXPECT_EQ(got.events.size(), static_cast<std::size_t>(kWrites));
  EXPECT_EQ(got.lost, 0u);
  EXPECT_EQ(tracer.attempts(), static_cast<std::uint64_t>(kWrites));
  for (const write_event& e : got.events) {
    EXPECT_EQ(e.tgid, static_cast<std::uint32_t>(pid));
    EXPECT_EQ(e.cookie, PERFBUF_WRITE_COOKIE);
  }
}

TEST(ReaderKernel, StalledReaderOnTinyRingAccountsForEveryRecord) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  // One page: room for about 100 records of 40 bytes.
  Reader reader(tracer.events_map(), got.sample_handler(), got.lost_handler(),
                Options{.pages_per_cpu = 1, .cpus = {0}});
  constexpr int kFired = 2000;
  for (int i = 0; i < kFired; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  // The kernel reports a loss in the ring once there is room again: one more record brings it.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());

  EXPECT_EQ(tracer.attempts(), kFired + 1u);
  EXPECT_GT(got.lost, 0u);
  EXPECT_EQ(got.lost, tracer.failures());
  EXPECT_EQ(got.events.size() + got.lost, tracer.attempts());
  EXPECT_EQ(reader.total_stats().lost, got.lost);
}

TEST(ReaderKernel, DestroyingReaderLeavesNoFdsOrMappings) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int fds = count_fds();
  const int maps = count_perf_mappings();
  {
    Received got;
    Reader reader(tracer.events_map(), got.sample_handler());
    EXPECT_GT(count_fds(), fds);
    EXPECT_GT(count_perf_mappings(), maps);
    ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
    ASSERT_TRUE(reader.consume().ok());
  }
  EXPECT_EQ(count_fds(), fds);
  EXPECT_EQ(count_perf_mappings(), maps);
  // Its rings were taken out of the map: the program finds the slot empty.
  const std::uint64_t failures = tracer.failures();
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  EXPECT_EQ(tracer.failures(), failures + 1);
}

TEST(ReaderKernel, ReplacingAReaderKeepsTheNewOneInTheMap) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received first, second;
  Reader reader(tracer.events_map(), first.sample_handler());
  reader = Reader(tracer.events_map(), second.sample_handler());  // the old one goes after
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(second.events.size(), 1u);
  EXPECT_EQ(tracer.failures(), 0u);
}

TEST(ReaderKernel, OlderReaderGoingAwayLeavesTheNewerOneConnected) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received older_got, newer_got;
  auto older = std::make_unique<Reader>(tracer.events_map(), older_got.sample_handler());
  Reader newer(tracer.events_map(), newer_got.sample_handler());
  older.reset();
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(newer.consume().ok());
  EXPECT_EQ(newer_got.events.size(), 1u);
  EXPECT_EQ(tracer.failures(), 0u);
}

TEST(ReaderKernel, FailedConstructionLeavesNoFds) {
  REQUIRE_BPF();
  const int map = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "wide", 4, 4, 64, nullptr);
  ASSERT_GE(map, 0);
  const int fds = count_fds();
  const int maps = count_perf_mappings();
  // Every online CPU opens fine, then one that is not online fails.
  std::vector<int> cpus = online_cpus();
  cpus.push_back(cpus.back() + 1);
  try {
    Reader reader(map, [](const Sample&) {}, {}, Options{.pages_per_cpu = 8, .cpus = cpus});
    ADD_FAILURE() << "a reader on an offline CPU was built";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("offline"), std::string::npos) << e.what();
  }
  EXPECT_EQ(count_fds(), fds);
  EXPECT_EQ(count_perf_mappings(), maps);
  close(map);
}

TEST(ReaderKernel, TimestampsFollowTheMonotonicClock) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  std::vector<std::uint64_t> times;
  Reader reader(tracer.events_map(), [&](const Sample& s) { times.push_back(s.time_ns); }, {},
                Options{.pages_per_cpu = 8, .timestamps = true});
  for (int i = 0; i < 20; ++i) {
    const std::uint64_t before = monotonic_ns();
    ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
    const std::uint64_t after = monotonic_ns();
    times.clear();
    ASSERT_TRUE(reader.consume().ok());
    ASSERT_EQ(times.size(), 1u);
    // Stamped while the program ran, on the same clock: inside the interval, to the nanosecond.
    EXPECT_GE(times[0], before) << "record time is " << (before - times[0]) << " ns early";
    EXPECT_LE(times[0], after) << "record time is " << (times[0] - after) << " ns late";
  }
}

TEST(ReaderKernel, PerfClockIsAvailableOnRequest) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  std::vector<std::uint64_t> times;
  Reader reader(tracer.events_map(), [&](const Sample& s) { times.push_back(s.time_ns); }, {},
                Options{.pages_per_cpu = 8, .timestamps = true, .clock = kPerfClock});
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  ASSERT_EQ(times.size(), 1u);
  // perf's clock counts from boot like CLOCK_MONOTONIC, but is not stepped with it.
  EXPECT_NEAR(static_cast<double>(times[0]), static_cast<double>(monotonic_ns()), 1e9);
}

TEST(ReaderKernel, RecordsBelowTheWakeupThresholdArriveWithinMaxDelay) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  // The kernel would wake the reader after a million records; one is sent.
  Reader reader(tracer.events_map(), got.sample_handler(), {},
                Options{.pages_per_cpu = 8, .wakeup = Wakeup::every(1000000),
                        .max_delay = milliseconds(20)});
  // Twice: the bound holds after the first flush too, not only from construction.
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
    const auto written = std::chrono::steady_clock::now();
    const auto r = reader.poll(milliseconds(5000));
    const auto waited = std::chrono::steady_clock::now() - written;
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, 1u);
    EXPECT_EQ(got.events.size(), round + 1u);
    // max_delay plus generous room for a loaded machine; a bound that slipped
    // by an order of magnitude shows here.
    EXPECT_LT(waited, milliseconds(20 + 150))
        << "record delivered after " << std::chrono::duration<double, std::milli>(waited).count()
        << " ms with max_delay 20 ms";
  }
}

TEST(ReaderKernel, BusyPollFindsARecordThatArrivesDuringTheSpin) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  // Never woken, never flushed within the test: only the busy poll can find the record.
  Reader reader(tracer.events_map(), got.sample_handler(), {},
                Options{.pages_per_cpu = 8, .wakeup = Wakeup::every(1000000),
                        .max_delay = std::chrono::minutes(1),
                        .busy_poll = std::chrono::milliseconds(800)});
  const int prog = tracer.raw_tracepoint_fd();
  std::thread writer([prog] {
    std::this_thread::sleep_for(milliseconds(30));  // poll() is spinning by now
    fire_on_cpu(prog, 0);
  });
  const auto start = std::chrono::steady_clock::now();
  const auto r = reader.poll(milliseconds(3000));
  const auto waited = std::chrono::steady_clock::now() - start;
  writer.join();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, 1u);
  EXPECT_EQ(reader.total_stats().wakeups, 0u);
  EXPECT_LT(waited, milliseconds(800)) << "found only after the spin ended";
}

TEST(ReaderKernel, PollWithTheLargestTimeoutStillDelivers) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler());
  // Neither must overflow the deadline; both mean no limit.
  for (milliseconds timeout : {milliseconds::max(), milliseconds(-1)}) {
    ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
    const auto r = reader.poll(timeout);
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, 1u);
  }
}

TEST(ReaderKernel, PollTimesOutWithZeroWhenNothingArrives) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler());
  const auto start = std::chrono::steady_clock::now();
  const auto r = reader.poll(milliseconds(60));
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  EXPECT_GE(waited, milliseconds(60));
  EXPECT_LT(waited, milliseconds(60 + 250));
}

TEST(ReaderKernel, HandlerCanStopTheDrainEarly) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  int seen = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { return ++seen == 2 ? Action::stop : Action::next; });
  for (int i = 0; i < 5; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  auto first = reader.consume();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 2u);
  auto rest = reader.consume();
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, 3u);
}

// After a stop the rest is served by the next poll() at once, not at the next
// flush: the kernel's wakeup for those records was already used up.
TEST(ReaderKernel, RecordsLeftByAStopComeWithTheNextPoll) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  int seen = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) {
    ++seen;
    return Action::stop;
  }, {}, Options{.pages_per_cpu = 8, .cpus = {0}, .wakeup = Wakeup::every_record(),
                 .max_delay = std::chrono::minutes(1)});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  testing::expect_prompt_polls(reader, 3, 1);
  EXPECT_EQ(seen, 3);
}

TEST(ReaderKernel, EpollFdServesAnOutsideEventLoop) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler(), {},
                Options{.pages_per_cpu = 8, .wakeup = Wakeup::every_record()});
  pollfd p{reader.epoll_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // nothing yet
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), reader.ring_cpu(0)), 0);
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  auto r = reader.consume_ring(0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1u);
  EXPECT_FALSE(reader.consume_ring(reader.ring_count()).ok());
}

// A CPU other than 0, so that its id differs from its ring's index in a one-CPU set.
TEST(ReaderKernel, ExplicitCpuSetStoresEachRingAtItsCpuId) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler(), {},
                Options{.pages_per_cpu = 8, .cpus = {*cpu}});
  ASSERT_EQ(reader.ring_count(), 1u);
  EXPECT_EQ(reader.ring_cpu(0), *cpu);
  // Slot `cpu` holds that CPU's ring: the program's output there succeeds...
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);
  EXPECT_EQ(tracer.failures(), 0u);
  // ...and slot 0 stays empty: CPU 0's output fails.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  EXPECT_EQ(tracer.failures(), 1u);
  ASSERT_TRUE(reader.consume().ok());
  ASSERT_EQ(got.cpus.size(), 1u);
  EXPECT_EQ(got.cpus[0], *cpu);
  EXPECT_EQ(reader.stats().at(0).cpu, *cpu);
}

TEST(ReaderKernel, LostRecordsAreReportedWithTheirCpu) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  WriteTracer tracer({});
  std::map<int, std::uint64_t> lost_by_cpu;
  std::uint64_t received = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { ++received; },
                [&](int c, std::uint64_t n) { lost_by_cpu[c] += n; },
                Options{.pages_per_cpu = 1, .cpus = {*cpu}});
  for (int i = 0; i < 500; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);
  ASSERT_TRUE(reader.consume().ok());
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);  // brings the loss record
  ASSERT_TRUE(reader.consume().ok());
  ASSERT_GT(tracer.failures(), 0u);
  EXPECT_EQ(lost_by_cpu.size(), 1u);
  EXPECT_EQ(lost_by_cpu[*cpu], tracer.failures());
  EXPECT_EQ(reader.stats().at(0).lost, tracer.failures());
  EXPECT_EQ(received + tracer.failures(), tracer.attempts());
}

TEST(ReaderKernel, StopEndsTheWholePassNotOnlyOneRing) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  WriteTracer tracer({});
  std::vector<int> seen;
  Reader reader(tracer.events_map(), [&](const Sample& s) {
    seen.push_back(s.cpu);
    return Action::stop;
  }, {}, Options{.pages_per_cpu = 8, .cpus = {0, *cpu}});
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);
  auto first = reader.consume();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(seen.size(), 1u);
  auto second = reader.consume();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 1u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0], seen[1]);
}

// Fires `records` records on CPU 0 one at a time, polling after each, and
// returns after how many records each wakeup came.
std::vector<int> wakeups_while_firing(Wakeup policy, int records) {
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {}, {},
                Options{.pages_per_cpu = 8, .cpus = {0}, .wakeup = policy,
                        .max_delay = std::chrono::minutes(1)});
  std::vector<int> at;
  std::uint64_t seen = 0;
  for (int i = 1; i <= records; ++i) {
    if (fire_on_cpu(tracer.raw_tracepoint_fd(), 0) != 0) ADD_FAILURE() << "fire failed";
    // The kernel's wakeup runs from irq_work: give it a moment to land.
    if (!reader.poll(milliseconds(1)).ok()) ADD_FAILURE() << "poll failed";
    for (; seen < reader.total_stats().wakeups; ++seen) at.push_back(i);
  }
  return at;
}

TEST(ReaderKernel, EveryRecordWakesOncePerRecord) {
  REQUIRE_BPF();
  EXPECT_EQ(wakeups_while_firing(Wakeup::every_record(), 10),
            (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST(ReaderKernel, EveryNWakesOncePerNRecords) {
  REQUIRE_BPF();
  EXPECT_EQ(wakeups_while_firing(Wakeup::every(4), 17), (std::vector<int>{4, 8, 12, 16}));
}

TEST(ReaderKernel, DefaultWatermarkWakesAfterAQuarterOfASmallRing) {
  REQUIRE_BPF();
  // 8 pages: the watermark is a quarter of the ring. Records are 40 bytes here
  // (8-byte header, 4-byte size, 24-byte write_event, 4 bytes of padding).
  const std::size_t ring = 8 * static_cast<std::size_t>(getpagesize());
  static_assert(sizeof(write_event) == 24);
  const int per_wakeup = static_cast<int>(std::min<std::size_t>(ring / 4, 64 * 1024) / 40);
  const std::vector<int> at = wakeups_while_firing(Wakeup::watermark(0), per_wakeup + 8);
  ASSERT_EQ(at.size(), 1u) << "expected one wakeup just past " << per_wakeup << " records";
  // The kernel wakes once more than the watermark has been written.
  EXPECT_GE(at[0], per_wakeup);
  EXPECT_LE(at[0], per_wakeup + 2);
}

void ignore_signal(int) {}

// SIGALRM handled by a no-op (no SA_RESTART, so it interrupts a wait) for the
// scope of a test, optionally blocked outside the wait; everything restored after.
class AlarmSignal {
 public:
  explicit AlarmSignal(bool block_outside_wait) : blocked_(block_outside_wait) {
    struct sigaction sa {};
    sa.sa_handler = ignore_signal;
    sigaction(SIGALRM, &sa, &old_action_);
    sigemptyset(&alarm_);
    sigaddset(&alarm_, SIGALRM);
    pthread_sigmask(blocked_ ? SIG_BLOCK : SIG_UNBLOCK, &alarm_, &wait_mask_);
    sigdelset(&wait_mask_, SIGALRM);
  }
  ~AlarmSignal() {
    const itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    if (blocked_) pthread_sigmask(SIG_UNBLOCK, &alarm_, nullptr);
    sigaction(SIGALRM, &old_action_, nullptr);
  }
  // The thread's mask with SIGALRM let through: for poll(timeout, &wait_mask()).
  const sigset_t& wait_mask() const { return wait_mask_; }
  // Fires after `usec`, and again every `repeat_usec` if that is not 0.
  void start_timer(long usec, long repeat_usec = 0) {
    itimerval t{};
    t.it_value.tv_usec = usec;
    t.it_interval.tv_usec = repeat_usec;
    setitimer(ITIMER_REAL, &t, nullptr);
  }

 private:
  bool blocked_;
  struct sigaction old_action_ {};
  sigset_t alarm_, wait_mask_;
};

TEST(ReaderKernel, SignalDuringPollIsReportedAsInterrupted) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler());
  AlarmSignal alarm(/*block_outside_wait=*/false);
  // Repeating, so that a tick landing between two waits is followed by one inside a wait.
  alarm.start_timer(50000, 50000);
  const auto r = reader.poll(milliseconds(5000));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.interrupted()) << r.error().what();
}

TEST(ReaderKernel, SignalBlockedOutsideTheWaitAlwaysInterruptsIt) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.sample_handler());
  AlarmSignal alarm(/*block_outside_wait=*/true);
  // One tick only: wherever poll() is when it fires, it is delivered in the wait.
  alarm.start_timer(30000);
  const auto r = reader.poll(milliseconds(5000), &alarm.wait_mask());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.interrupted()) << r.error().what();
}

TEST(ReaderKernel, BusyPollStillLetsTheWaitMaskDeliverSignals) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {}, {},
                Options{.busy_poll = std::chrono::microseconds(100)});
  AlarmSignal alarm(/*block_outside_wait=*/true);
  raise(SIGALRM);  // pending, blocked
  // Records are always there, so the busy path finds them without a wait.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  const auto r = reader.poll(milliseconds(1000), &alarm.wait_mask());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.interrupted()) << r.error().what();
}

TEST(ReaderKernel, RejectsAMapThatIsNotAPerfEventArray) {
  REQUIRE_BPF();
  const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "not_perf", 4, 4, 4, nullptr);
  ASSERT_GE(fd, 0);
  try {
    Reader reader(fd, [](const Sample&) {});
    ADD_FAILURE() << "accepted an ARRAY map";
  } catch (const Error& e) {
    EXPECT_EQ(e.errnum(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("PERF_EVENT_ARRAY"), std::string::npos) << e.what();
  }
  close(fd);
}

TEST(ReaderKernel, RejectsAMapWithTooFewSlots) {
  REQUIRE_BPF();
  const std::vector<int> cpus = online_cpus();
  const int fd = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "one_slot", 4, 4, 1, nullptr);
  ASSERT_GE(fd, 0);
  try {
    Reader reader(fd, [](const Sample&) {}, {},
                  Options{.pages_per_cpu = 8, .cpus = {cpus.back() + 1}});
    ADD_FAILURE() << "accepted a map without a slot for the CPU";
  } catch (const Error& e) {
    EXPECT_EQ(e.errnum(), E2BIG);
    EXPECT_NE(std::string(e.what()).find("slots"), std::string::npos) << e.what();
  }
  close(fd);
}

TEST(ReaderKernel, RejectsAnInvalidFd) {
  for (int fd : {-1, 987654}) {
    try {
      Reader reader(fd, [](const Sample&) {});
      ADD_FAILURE() << "accepted fd " << fd;
    } catch (const Error& e) {
      EXPECT_EQ(e.errnum(), EBADF) << e.what();
    }
  }
}

// Options are checked before anything else, so even fd -1 gives the option's error.
void expect_option_error(Options o, const std::string& mentions) {
  try {
    Reader reader(-1, [](const Sample&) {}, {}, std::move(o));
    ADD_FAILURE() << "accepted options that should mention " << mentions;
  } catch (const Error& e) {
    EXPECT_EQ(e.errnum(), EINVAL) << e.what();
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

TEST(ReaderOptions, RejectsBadPageCounts) {
  for (std::size_t pages : {3, 100, 1000}) expect_option_error({.pages_per_cpu = pages}, "power of two");
  expect_option_error({.pages_per_cpu = std::size_t(1) << 30}, "over the limit");
}

TEST(ReaderOptions, RejectsBadWakeupDelayAndCpus) {
  expect_option_error({.wakeup = Wakeup::every(0)}, "every(n) needs n >= 1");
  expect_option_error({.pages_per_cpu = 1, .wakeup = Wakeup::watermark(1 << 20)},
                      "below the ring size");
  expect_option_error({.max_delay = milliseconds(0)}, "max_delay");
  expect_option_error({.max_delay = milliseconds::max()}, "max_delay");
  expect_option_error({.busy_poll = std::chrono::seconds(2)}, "busy_poll");
  expect_option_error({.cpus = {0, 0}}, "twice");
  expect_option_error({.cpus = {-1}}, "negative");
  expect_option_error({.clock = CLOCK_PROCESS_CPUTIME_ID}, "not a clock perf can stamp");
}

}  // namespace
}  // namespace perfbuf

namespace perfbuf {
namespace {

TEST(ReaderKernel, TelemetryCountsDrainsFillAndTimeInHandlers) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }, {}, Options{.pages_per_cpu = 8, .cpus = {0}, .wakeup = Wakeup::watermark(0)});
  constexpr int kRecords = 20;
  for (int i = 0; i < kRecords; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  const CpuStats s = reader.stats().at(0);
  EXPECT_EQ(s.records, static_cast<std::uint64_t>(kRecords));
  EXPECT_EQ(s.drains, 1u);
  // 40 bytes a record: header, size, the 24-byte event, padding.
  EXPECT_EQ(s.fill_high_water, kRecords * 40u);
  EXPECT_GE(s.drain_ns, kRecords * 500'000u) << "the handlers' time is in drain_ns";
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(reader.stats().at(0).drains, 2u);
  EXPECT_EQ(reader.stats().at(0).fill_high_water, kRecords * 40u) << "a high-water mark stays";
  EXPECT_EQ(reader.total_stats().fill_high_water, kRecords * 40u);
}

}  // namespace
}  // namespace perfbuf
