// The poll loop: one epoll set for every ring of every map, the wait with its
// deadline, the flush every max_delay, busy polling, signals, a per-ring
// budget per pass, and a wake() any thread may call.
#pragma once

#include <signal.h>
#include <sys/epoll.h>

#include <chrono>
#include <functional>
#include <cstdint>
#include <optional>
#include <vector>

#include "polled_ring.h"
#include "sys.h"

namespace perfbuf::detail {

struct LoopOptions {
  std::chrono::milliseconds max_delay;
  std::chrono::microseconds busy_poll;
  std::uint64_t ring_budget;
  // Time order across rings: a record is handed out once `window` has passed
  // since its timestamp (on `clock`), oldest first.
  bool ordered = false;
  std::chrono::microseconds window{0};
  clockid_t clock = CLOCK_MONOTONIC;
};

class Poller {
 public:
  explicit Poller(LoopOptions options);

  // Watches `ring` (which must outlive its id) and returns its id, stable
  // until remove(): rings may come and go while others are served.
  std::uint32_t add(PolledRing& ring);
  void remove(std::uint32_t id) noexcept;

  Result<std::size_t> poll(std::chrono::milliseconds timeout, const sigset_t* sigmask);
  // Drains every ring now, without waiting (in time order: what was written
  // before the call).
  Result<std::size_t> consume();
  Result<std::size_t> consume(PolledRing& ring);
  void wake() noexcept { sys::eventfd_signal(wake_.get()); }
  // Calls `changed` from poll() after CPUs went offline or online (it may add
  // rings, or give rings new fds: rewatch()); false if this process cannot
  // listen for hotplug events.
  bool on_cpus_changed(std::function<void(const sys::CpuEvents&)> changed);
  // Watches the ring's fd() again, after it changed.
  void rewatch(PolledRing& ring);
  int epoll_fd() const noexcept { return epoll_.get(); }
  // The time as of the last clock read of poll() or consume() (their end,
  // when they delivered something): what a caller that needs the time after
  // one takes instead of reading the clock once more.
  std::chrono::steady_clock::time_point last_clock_read() const noexcept { return last_clock_read_; }

 private:
  using clock = std::chrono::steady_clock;
  static constexpr std::uint64_t kNoBudget = UINT64_MAX;
  void drain(PolledRing& ring, Pass& pass, std::uint64_t budget);
  // Every ring; true if the pass got through all of them (no early stop).
  bool drain_all(Pass& pass, std::uint64_t budget);
  // Ordered mode: the timed rings merged by time, the others as they come.
  // hold_recent: records younger than the window wait (consume() takes all).
  void drain_ordered(Pass& pass, std::uint64_t budget, bool hold_recent);
  // The rings whose last drain left records (more_): called when
  // more_to_serve().
  void drain_more(Pass& pass);
  bool more_to_serve() const noexcept { return !more_.empty() || rebuild_more_; }
  [[gnu::cold]] std::optional<Result<std::size_t>> spin(Pass& pass, clock::time_point& now,
                                                       clock::time_point deadline,
                                                       const sigset_t* sigmask);
  [[gnu::cold]] bool serve_other_events(int n, Pass& pass);
  void list_if_more(PolledRing& ring);
  // The same, with `more` set if the ring still holds records (a handler
  // stopped or threw in the middle of it).
  void list_if_readable(PolledRing& ring);
  bool any_readable() const;
  // How often every ring must be drained: kAdaptivePoll while a ring is
  // polled, max_delay while records may wait below a wakeup threshold, never
  // when every ring wakes the reader per record (from timers_, O(1)).
  std::optional<clock::duration> flush_interval() const {
    // (records the reorder window holds back have release_at_)
    if (timers_[RingTimer::poll] > 0) return std::min<clock::duration>(options_.max_delay, kAdaptivePoll);
    if (timers_[RingTimer::flush] > 0) return options_.max_delay;
    return std::nullopt;
  }
  PolledRing* ring_of(std::uint64_t token) const;

  // What every wakeup reads, side by side (fewer cache lines), then the rest.
  LoopOptions options_;
  sys::Fd epoll_;
  RingTimers timers_;                // what the rings need from the timer
  bool rebuild_more_ = false;  // the list may miss rings: a handler threw while it was served
  std::uint64_t passes_ = 0;     // ids for Pass
  clock::time_point last_flush_ = clock::now();
  clock::time_point last_clock_read_ = last_flush_;
  // Ordered mode: when the oldest record held back by the window may go out;
  // the next pass comes then, not at the next flush.
  clock::time_point release_at_ = clock::time_point::max();
  std::vector<PolledRing*> rings_;   // by id; nullptr where a ring was removed
  std::vector<epoll_event> events_;
  // Ids of rings that were left with records to serve again without a wait
  // (PolledRing::more), each listed once; serving_: the list being served.
  std::vector<std::uint32_t> more_, serving_;
  std::uint64_t last_time_ = 0;  // ordered mode: the newest time handed out
  sys::Fd wake_;                     // eventfd in the epoll set: wake() ends a wait
  sys::Fd uevents_;                  // the kernel's device events, for CPU hotplug
  std::function<void(const sys::CpuEvents&)> cpus_changed_;
};

}  // namespace perfbuf::detail
