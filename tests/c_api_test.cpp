// The C API (<perfbuf/perfbuf.h>): libbpf's shapes and conventions, options,
// errors, and no exception across the boundary. Real kernel, real rings.
#include <gtest/gtest.h>

#include <perfbuf/perfbuf.h>
#include <perfbuf/reader.h>

#include <bpf/libbpf.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "bpf_support.h"
#include "c_api_user.h"
#include "write_event.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::fire_on_cpu;
using tools::AttachMode;
using tools::WriteTracer;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Owns a handle from perfbuf__new.
struct Handle {
  perfbuf_t* pb;
  explicit Handle(perfbuf_t* p) : pb(p) {}
  ~Handle() { perfbuf__free(pb); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

TEST(CApi, PortedLibbpfCodeReadsEveryCpu) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new(bpf_map__fd(tracer.events_map()), 8, &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  const std::vector<int> cpus = online_cpus();
  ASSERT_EQ(perfbuf__buffer_cnt(h.pb), cpus.size());
  for (int cpu : cpus) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), cpu), 0);
  // Batched wakeups: the records come with the max_delay flush, all in one poll.
  EXPECT_EQ(perfbuf__poll(h.pb, 2000), static_cast<int>(cpus.size()));
  EXPECT_EQ(counts.records, static_cast<long>(cpus.size()));
  EXPECT_EQ(counts.bad, 0);
  for (int cpu : cpus) EXPECT_TRUE(counts.cpus & (1UL << cpu)) << "nothing from cpu " << cpu;
}

TEST(CApi, ChildDoingKWritesGivesExactlyKRecords) {
  REQUIRE_BPF();
  constexpr int kWrites = 1000;  // 40 KiB of records: fits one 16-page ring, no loss possible
  testing::WritingChild child(kWrites);
  WriteTracer tracer({.only_tgid = static_cast<std::uint32_t>(child.pid()), .ignore_tgid = 0});
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new(bpf_map__fd(tracer.events_map()), 16, &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  std::vector<std::string> notes;
  tracer.attach(AttachMode::raw_tracepoint, notes);
  const pid_t pid = child.pid();
  child.release();
  for (int i = 0; i < 100 && counts.records < kWrites; ++i) ASSERT_GE(perfbuf__poll(h.pb, 100), 0);
  ASSERT_EQ(child.release_and_wait(), 0);
  tracer.detach();
  ASSERT_GE(perfbuf__consume(h.pb), 0);
  EXPECT_EQ(counts.records, kWrites);
  EXPECT_EQ(counts.bad, 0);
  EXPECT_EQ(counts.lost, 0);
  EXPECT_EQ(counts.pid, static_cast<unsigned>(pid));
}

TEST(CApi, CountsFdReportsFailedRingBufferOutputsAsLost) {
  REQUIRE_BPF();
  WriteTracer tracer({.only_tgid = 0, .ignore_tgid = 0, .transport = tools::Transport::ringbuf,
                      .ringbuf_bytes = static_cast<std::uint32_t>(getpagesize())});
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new_counted(bpf_map__fd(tracer.events_map()), bpf_map__fd(tracer.counts_map()),
                              &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(testing::fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_GE(perfbuf__consume(h.pb), 0);
  ASSERT_GT(tracer.failures(), 0u) << "the ring buffer never filled";
  EXPECT_EQ(counts.lost, static_cast<long>(tracer.failures()));
  EXPECT_EQ(counts.records + counts.lost, 1000);
  EXPECT_EQ(counts.bad, 0);
}

TEST(CApi, RingStatsGiveEachRingsFigures) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new(bpf_map__fd(tracer.events_map()), 8, &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_GE(perfbuf__consume(h.pb), 0);
  perfbuf_ring_stats st{};
  st.sz = sizeof st;
  ASSERT_EQ(perfbuf__ring_stats(h.pb, 0, &st), 0) << perfbuf_last_error();
  EXPECT_EQ(st.cpu, online_cpus().front());
  EXPECT_EQ(st.records, 3u);
  EXPECT_GE(st.drains, 1u);
  EXPECT_EQ(st.fill_high_water, 3 * 40u);
  EXPECT_EQ(st.switches, 0u);
  // A burst moves the ring from a wakeup per record to being polled.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_GE(perfbuf__consume(h.pb), 0);
  ASSERT_EQ(perfbuf__ring_stats(h.pb, 0, &st), 0) << perfbuf_last_error();
  EXPECT_EQ(st.records, 103u);
  EXPECT_GE(st.switches, 1u);
  EXPECT_EQ(perfbuf__ring_stats(h.pb, perfbuf__buffer_cnt(h.pb), &st), -EINVAL);
  st.sz = 0;
  EXPECT_EQ(perfbuf__ring_stats(h.pb, 0, &st), -EINVAL);
  EXPECT_NE(std::string(perfbuf_last_error()).find("sizeof(struct perfbuf_ring_stats)"),
            std::string::npos);
}

TEST(CApi, PerfOutputsWhilePausedReachLostCbAndTheRestArrive) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new_counted(bpf_map__fd(tracer.events_map()), bpf_map__fd(tracer.counts_map()),
                              &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  const int prog = tracer.raw_tracepoint_fd();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  EXPECT_FALSE(perfbuf__is_paused(h.pb));
  ASSERT_EQ(perfbuf__pause(h.pb), 0) << perfbuf_last_error();
  EXPECT_TRUE(perfbuf__is_paused(h.pb));
  for (int i = 0; i < 7; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  // What the ring held before the pause is still read; nothing since has arrived.
  ASSERT_GE(perfbuf__consume(h.pb), 0) << perfbuf_last_error();
  EXPECT_EQ(counts.records, 5);
  ASSERT_EQ(perfbuf__resume(h.pb), 0) << perfbuf_last_error();
  EXPECT_FALSE(perfbuf__is_paused(h.pb));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_GE(perfbuf__consume(h.pb), 0) << perfbuf_last_error();
  EXPECT_EQ(counts.records, 8) << "what was written before and after the pause arrives";
  EXPECT_EQ(counts.lost, 7) << "the outputs while paused";
  EXPECT_EQ(counts.bad, 0);
  EXPECT_EQ(counts.cpus, 1UL) << "records from CPU 0 only";
}

TEST(CApi, RingBufferPausesOnlyWithItsCountsFd) {
  REQUIRE_BPF();
  WriteTracer tracer({.only_tgid = 0, .ignore_tgid = 0, .transport = tools::Transport::ringbuf,
                      .ringbuf_bytes = 64 * 1024});
  const int map_fd = bpf_map__fd(tracer.events_map());
  const int prog = tracer.raw_tracepoint_fd();
  {
    c_user_counts counts{};
    long err = 1;
    Handle h(c_user_new(map_fd, 0, &counts, &err));
    ASSERT_EQ(err, 0) << perfbuf_last_error();
    EXPECT_EQ(perfbuf__pause(h.pb), -EOPNOTSUPP);
    EXPECT_TRUE(has(perfbuf_last_error(), "perfbuf__pause: ")) << perfbuf_last_error();
    EXPECT_TRUE(has(perfbuf_last_error(), "count_outputs()")) << perfbuf_last_error();
    EXPECT_FALSE(perfbuf__is_paused(h.pb)) << "a failed pause changes nothing";
    ASSERT_EQ(fire_on_cpu(prog, 0), 0);
    EXPECT_EQ(perfbuf__consume(h.pb), 1);
  }
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new_counted(map_fd, bpf_map__fd(tracer.counts_map()), &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  for (int i = 0; i < 2; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_EQ(perfbuf__pause(h.pb), 0) << perfbuf_last_error();
  EXPECT_TRUE(perfbuf__is_paused(h.pb));
  EXPECT_EQ(tracer.counts().paused, 1u);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_GE(perfbuf__consume(h.pb), 0) << perfbuf_last_error();
  EXPECT_EQ(counts.records, 2) << "only what was written before the pause";
  ASSERT_EQ(perfbuf__resume(h.pb), 0) << perfbuf_last_error();
  EXPECT_EQ(tracer.counts().paused, 0u);
  ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_GE(perfbuf__consume(h.pb), 0) << perfbuf_last_error();
  EXPECT_EQ(counts.records, 3);
  EXPECT_EQ(counts.lost, 4) << "the outputs while paused";
  EXPECT_EQ(counts.bad, 0);
}

TEST(CApi, FailureIsNullWithErrnoAndTheFullMessage) {
  c_user_counts counts{};
  long err = 0;
  // A bad page count is found before the map is looked at.
  errno = 0;
  EXPECT_EQ(c_user_new(-1, 3, &counts, &err), nullptr);
  EXPECT_EQ(err, -EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "page_cnt = 3 must be a power of two")) << perfbuf_last_error();

  errno = 0;
  EXPECT_EQ(c_user_new(-1, 8, &counts, &err), nullptr);
  EXPECT_EQ(err, -EBADF);
  EXPECT_TRUE(has(perfbuf_last_error(), "map fd -1 is not valid")) << perfbuf_last_error();

  errno = 0;
  perfbuf_t* pb = perfbuf__new(-1, 8, nullptr, nullptr, nullptr, nullptr);
  EXPECT_EQ(pb, nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(libbpf_get_error(pb), -EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "sample_cb is NULL")) << perfbuf_last_error();

  // The message is per thread.
  std::string other;
  std::thread([&] { other = perfbuf_last_error(); }).join();
  EXPECT_EQ(other, "");
}

TEST(CApi, NullHandleIsEinvalNotACrash) {
  EXPECT_EQ(perfbuf__poll(nullptr, 0), -EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "perfbuf__poll: pb is NULL")) << perfbuf_last_error();
  EXPECT_EQ(perfbuf__consume(nullptr), -EINVAL);
  EXPECT_EQ(perfbuf__consume_buffer(nullptr, 0), -EINVAL);
  EXPECT_EQ(perfbuf__wake(nullptr), -EINVAL);
  EXPECT_EQ(perfbuf__buffer_fd(nullptr, 0), -EINVAL);
  EXPECT_EQ(perfbuf__epoll_fd(nullptr), -EINVAL);
  EXPECT_EQ(perfbuf__buffer_cnt(nullptr), 0u);
  EXPECT_EQ(perfbuf__pause(nullptr), -EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "perfbuf__pause: pb is NULL")) << perfbuf_last_error();
  EXPECT_EQ(perfbuf__resume(nullptr), -EINVAL);
  EXPECT_FALSE(perfbuf__is_paused(nullptr));
  perfbuf__free(nullptr);
}

void ignore_sample(void*, int, void*, __u32) {}

TEST(CApi, OptsSizeKeepsOlderAndNewerCallersWorking) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int map_fd = bpf_map__fd(tracer.events_map());
  auto try_new = [&](const void* opts) {
    perfbuf_t* pb = perfbuf__new(map_fd, 8, ignore_sample, nullptr, nullptr,
                                 static_cast<const perfbuf_opts*>(opts));
    const int e = pb ? 0 : errno;
    perfbuf__free(pb);
    return e;
  };
  perfbuf_opts zero_size{};
  EXPECT_EQ(try_new(&zero_size), EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "opts->sz = 0: set it to sizeof(struct perfbuf_opts)"))
      << perfbuf_last_error();

  // An older caller's struct ends before `wakeup`: what follows is not read.
  perfbuf_opts older{};
  older.sz = offsetof(perfbuf_opts, wakeup);
  const std::underlying_type_t<perfbuf_wakeup> bad_wakeup = 99;  // as C code may store it
  std::memcpy(&older.wakeup, &bad_wakeup, sizeof bad_wakeup);
  EXPECT_EQ(try_new(&older), 0) << perfbuf_last_error();
  older.sz = sizeof older;  // now it is read, and refused
  EXPECT_EQ(try_new(&older), EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "opts->wakeup = 99 is not a PERFBUF_WAKEUP_* value"))
      << perfbuf_last_error();

  // A newer caller's struct: extra bytes that are zero are fine, others are refused.
  struct {
    perfbuf_opts opts;
    std::uint64_t newer_field;
  } newer{};
  newer.opts.sz = sizeof newer;
  EXPECT_EQ(try_new(&newer), 0) << perfbuf_last_error();
  newer.newer_field = 1;
  EXPECT_EQ(try_new(&newer), EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "sets fields it does not know")) << perfbuf_last_error();

  perfbuf_opts every_zero{};
  every_zero.sz = sizeof every_zero;
  every_zero.wakeup = PERFBUF_WAKEUP_EVERY_N;
  EXPECT_EQ(try_new(&every_zero), EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "wakeup_value must be at least 1")) << perfbuf_last_error();
}

TEST(CApi, WakeupEveryRecordMakesTheEpollFdReadable) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int map_fd = bpf_map__fd(tracer.events_map());
  for (perfbuf_wakeup mode : {PERFBUF_WAKEUP_WATERMARK, PERFBUF_WAKEUP_EVERY_RECORD}) {
    c_user_counts counts{};
    long err = 1;
    Handle h(c_user_new_with_opts(map_fd, mode, 0, 0, &counts, &err));
    ASSERT_EQ(err, 0) << perfbuf_last_error();
    pollfd p{perfbuf__epoll_fd(h.pb), POLLIN, 0};
    ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
    // One record is far below the default watermark: only every-record wakes.
    EXPECT_EQ(::poll(&p, 1, 300), mode == PERFBUF_WAKEUP_EVERY_RECORD ? 1 : 0) << "mode " << mode;
    EXPECT_EQ(perfbuf__consume(h.pb), 1);
    EXPECT_EQ(counts.records, 1);
  }
}

TEST(CApi, MaxDelayBoundsHowLongARecordWaits) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  c_user_counts counts{};
  long err = 1;
  // The kernel would wake the reader after a million records; one is sent.
  Handle h(c_user_new_with_opts(bpf_map__fd(tracer.events_map()), PERFBUF_WAKEUP_EVERY_N, 1000000,
                                50, &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  const auto start = steady_clock::now();
  EXPECT_EQ(perfbuf__poll(h.pb, 5000), 1);
  const auto took = steady_clock::now() - start;
  EXPECT_LT(took, milliseconds(1000));
  EXPECT_EQ(counts.records, 1);
}

struct Stamped {
  std::vector<std::uint64_t> times;
};

TEST(CApi, TimestampCallbackGetsTheKernelTime) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Stamped got;
  perfbuf_opts opts{};
  opts.sz = sizeof opts;
  opts.sample_ts_cb = [](void* ctx, int, __u64 time_ns, void* data, __u32 size) {
    write_event e;
    ASSERT_GE(size, sizeof e);
    std::memcpy(&e, data, sizeof e);
    EXPECT_EQ(e.cookie, PERFBUF_WRITE_COOKIE);
    static_cast<Stamped*>(ctx)->times.push_back(time_ns);
  };
  Handle h(perfbuf__new(bpf_map__fd(tracer.events_map()), 8, nullptr, nullptr, &got, &opts));
  ASSERT_NE(h.pb, nullptr) << perfbuf_last_error();
  timespec before, after;
  clock_gettime(CLOCK_MONOTONIC, &before);
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  clock_gettime(CLOCK_MONOTONIC, &after);
  ASSERT_EQ(perfbuf__consume(h.pb), 1);
  ASSERT_EQ(got.times.size(), 1u);
  const auto ns = [](const timespec& t) { return t.tv_sec * 1000000000ull + t.tv_nsec; };
  EXPECT_GT(got.times[0] + 50000000, ns(before));
  EXPECT_LT(got.times[0], ns(after) + 50000000);

  // Both callbacks at once is ambiguous: refused.
  errno = 0;
  EXPECT_EQ(perfbuf__new(bpf_map__fd(tracer.events_map()), 8, ignore_sample, nullptr, &got, &opts),
            nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "not both")) << perfbuf_last_error();
}

TEST(CApi, BufferCallsCheckTheIndex) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new(bpf_map__fd(tracer.events_map()), 0, &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  const std::size_t n = perfbuf__buffer_cnt(h.pb);
  ASSERT_GT(n, 0u);
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = perfbuf__buffer_fd(h.pb, i);
    ASSERT_GE(fd, 0);
    char target[64] = {};
    ASSERT_GT(readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1), 0);
    EXPECT_TRUE(has(target, "perf_event")) << target;
  }
  EXPECT_EQ(perfbuf__buffer_fd(h.pb, n), -EINVAL);
  EXPECT_TRUE(has(perfbuf_last_error(), "buf_idx " + std::to_string(n) + " is out of range"))
      << perfbuf_last_error();
  EXPECT_EQ(perfbuf__consume_buffer(h.pb, n), -EINVAL);

  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), online_cpus()[0]), 0);
  EXPECT_EQ(perfbuf__consume_buffer(h.pb, 0), 1);  // ring 0 is the first online CPU's
  EXPECT_EQ(counts.records, 1);
}

TEST(CApi, ExceptionFromACppCallbackStopsAtTheCBoundary) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  int calls = 0;
  perfbuf_sample_fn throwing = [](void* ctx, int, void*, __u32) {
    if (++*static_cast<int*>(ctx) == 1) throw std::runtime_error("handler failed");
  };
  Handle h(perfbuf__new(bpf_map__fd(tracer.events_map()), 8, throwing, nullptr, &calls, nullptr));
  ASSERT_NE(h.pb, nullptr) << perfbuf_last_error();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  EXPECT_EQ(perfbuf__consume(h.pb), -ECANCELED);
  EXPECT_TRUE(has(perfbuf_last_error(), "perfbuf__consume: a callback threw: handler failed"))
      << perfbuf_last_error();
  // The record that threw counts as consumed; the other two come next.
  EXPECT_EQ(perfbuf__consume(h.pb), 2);
  EXPECT_EQ(calls, 3);
}

TEST(CApi, WakeReturnsAPollBlockedInAnotherThread) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  c_user_counts counts{};
  long err = 1;
  Handle h(c_user_new(bpf_map__fd(tracer.events_map()), 8, &counts, &err));
  ASSERT_EQ(err, 0) << perfbuf_last_error();
  int result = INT_MIN;
  std::thread poller([&] { result = perfbuf__poll(h.pb, 10000); });
  std::this_thread::sleep_for(milliseconds(200));
  const auto start = steady_clock::now();
  EXPECT_EQ(perfbuf__wake(h.pb), 0);
  poller.join();
  EXPECT_LT(steady_clock::now() - start, milliseconds(1000));
  EXPECT_EQ(result, 0);
}

}  // namespace
}  // namespace perfbuf
