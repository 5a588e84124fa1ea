// Stopping a poll() from another thread with wake(), and what happens when
// someone adds their own fd to the reader's epoll set. Real kernel, real rings.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "bpf_support.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::fire_on_cpu;
using tools::WriteTracer;

milliseconds since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

TEST(Wake, ReturnsAPollBlockedInAnotherThreadAtOnce) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {});
  std::optional<Result<std::size_t>> result;
  milliseconds took{};
  std::thread poller([&] {
    const auto start = steady_clock::now();
    result.emplace(reader.poll(milliseconds(10000)));
    took = since(start);
  });
  std::this_thread::sleep_for(milliseconds(200));  // the poller is waiting by now
  const auto woken_at = steady_clock::now();
  reader.wake();
  poller.join();
  ASSERT_TRUE(result->ok()) << result->error().what();
  EXPECT_EQ(**result, 0u);
  EXPECT_LT(since(woken_at), milliseconds(1000)) << "poll() took " << took.count() << " ms";
}

TEST(Wake, BeforePollMakesOnlyTheNextPollReturn) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {});
  reader.wake();
  reader.wake();  // several wakes before a poll count as one
  auto start = steady_clock::now();
  ASSERT_TRUE(reader.poll(milliseconds(10000)).ok());
  EXPECT_LT(since(start), milliseconds(1000));
  // The wake is used up: the next poll waits for its timeout again.
  start = steady_clock::now();
  const auto r = reader.poll(milliseconds(150));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, 0u);
  EXPECT_GE(since(start), milliseconds(140));
}

TEST(Wake, StopsAPollWithoutTimeoutFromAnotherThread) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  std::size_t handled = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { ++handled; }, {},
                Options{.wakeup = Wakeup::every_record()});
  std::atomic<bool> stop{false};
  int polls = 0;
  std::thread poller([&] {
    while (!stop) {
      ASSERT_TRUE(reader.poll(milliseconds(-1)).ok());
      ++polls;
    }
  });
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  std::this_thread::sleep_for(milliseconds(100));
  const auto start = steady_clock::now();
  stop = true;
  reader.wake();
  poller.join();  // hangs here (the test times out) if the wake is lost
  EXPECT_LT(since(start), milliseconds(1000));
  EXPECT_EQ(handled, 1u);
  EXPECT_GE(polls, 1);
}

// An fd the reader did not add, readable, in the reader's epoll set under `token`.
class ForeignFd {
 public:
  ForeignFd(int epoll_fd, std::uint64_t token) : epoll_fd_(epoll_fd), fd_(eventfd(1, EFD_CLOEXEC)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    added_ = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd_, &ev) == 0;
  }
  ~ForeignFd() {
    remove();
    close(fd_);
  }
  bool added() const { return added_; }
  void remove() {
    if (added_) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd_, nullptr);
    added_ = false;
  }

 private:
  int epoll_fd_;
  int fd_;
  bool added_ = false;
};

class ForeignToken : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(ForeignToken, IsAClearErrorFromPollNotASpinOrACrash) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  std::size_t handled = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { ++handled; }, {},
                Options{.wakeup = Wakeup::every_record()});
  ForeignFd foreign(reader.epoll_fd(), GetParam());
  ASSERT_TRUE(foreign.added());
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), reader.ring_cpu(0)), 0);

  const auto start = steady_clock::now();
  const auto r = reader.poll(milliseconds(3000));
  ASSERT_FALSE(r.ok()) << "poll() returned " << *r << " records with a foreign fd in its epoll set";
  EXPECT_LT(since(start), milliseconds(1000)) << "poll() kept waiting while the foreign fd was ready";
  EXPECT_EQ(r.error().errnum(), EINVAL);
  EXPECT_NE(std::string(r.error().what()).find("did not add"), std::string::npos)
      << r.error().what();
  EXPECT_EQ(handled, 1u) << "the ring that was ready in the same wait was not drained";
  EXPECT_EQ(reader.total_stats().corrupt, 0u);

  // Once the fd is gone, the reader works as before.
  foreign.remove();
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), reader.ring_cpu(0)), 0);
  const auto again = reader.poll(milliseconds(3000));
  ASSERT_TRUE(again.ok()) << again.error().what();
  EXPECT_EQ(*again, 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Tokens, ForeignToken,
    ::testing::Values(std::uint64_t{0}, std::uint64_t{1000},
                      // The reader's own tag ("pfbf") with a ring index it does not have,
                      // far enough out that using it unchecked crashes every time.
                      (std::uint64_t{0x70666266} << 32) | 0x7ffffff0));

}  // namespace
}  // namespace perfbuf
