// The rings the poll loop serves, behind one interface: the perf ring of one
// CPU, or a BPF ring buffer. Each drains itself into its map's handlers.
#pragma once

#include <perfbuf/reader.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace perfbuf::detail {

// steady_clock::now() read in place rather than through the C++ library
// (the same clock, CLOCK_MONOTONIC): the poll loop reads it a few times per
// wakeup, and each call into another library is more code to bring in.
inline std::chrono::steady_clock::time_point steady_now() noexcept {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(t.tv_sec) +
                                               std::chrono::nanoseconds(t.tv_nsec));
}

// What one pass over some rings did.
struct Pass {
  using clock = std::chrono::steady_clock;
  Pass(std::uint64_t pass_id, clock::time_point start) : id(pass_id), now(start) {}
  std::uint64_t id;            // tells passes apart: a ring is served once per pass
  // The time as of the end of the last drain (or the wait before it): rings
  // and the loop take it from here rather than read the clock again, one
  // read per drain instead of several.
  clock::time_point now;
  bool take_all = false;       // consume(): everything written before it, waiting if need be
  std::size_t records = 0;
  bool stopped = false;        // a handler returned Action::stop: the pass ends there
  std::optional<Error> error;  // the first corrupt ring; the other rings were still read

  Result<std::size_t> result() const {
    if (error) return *error;
    return records;
  }
  void add_error(Error e) {
    if (!error) error = std::move(e);
  }
};

// What a ring needs from the loop's timer.
enum class RingTimer : std::uint8_t {
  // It wakes the reader for every record: an idle reader then sleeps for as
  // long as its caller lets it.
  none,
  // Records may wait in it without waking the reader (a watermark, every n
  // records): the loop drains it every max_delay.
  flush,
  // It does not wake the reader now (Wakeup::adaptive() under heavy
  // traffic): the loop drains it every kAdaptivePoll.
  poll,
};

// How many of a loop's rings need each timer. The rings keep it up to date
// as they change, so the loop does not ask every ring before each wait.
struct RingTimers {
  std::uint32_t count[3] = {};
  std::uint32_t& operator[](RingTimer t) noexcept { return count[static_cast<int>(t)]; }
  std::uint32_t operator[](RingTimer t) const noexcept { return count[static_cast<int>(t)]; }
};

// The handlers of one map, shared by its rings.
struct Handlers {
  SampleHandler on_sample;
  LostHandler on_lost;
};

// Aligned, and what a wakeup reads first: the loop's marks and the counters
// of every drain share the object's first cache lines with its vtable pointer.
class alignas(64) PolledRing {
 public:
  explicit PolledRing(int cpu, int source) { stats.cpu = cpu, stats.source = source; }
  virtual ~PolledRing() = default;
  PolledRing(const PolledRing&) = delete;
  PolledRing& operator=(const PolledRing&) = delete;

  // What epoll watches: readable when the kernel woke this ring's reader.
  virtual int fd() const noexcept = 0;
  // Whether records are waiting (busy polling looks here without a wakeup).
  virtual bool readable() const noexcept = 0;
  // The bytes waiting to be read (for CpuStats::fill_high_water).
  virtual std::uint64_t fill() const noexcept = 0;
  // Hands at most `budget` records to the handlers. Sets `more` when the
  // budget ran out with records left, so the loop comes back without waiting.
  // Takes note_fill(fill()) as it begins (there, where the ring is read
  // anyway, rather than through one more call per wakeup).
  virtual void drain(Pass& pass, std::uint64_t budget) = 0;

  // Time-ordered delivery, for rings whose records carry a timestamp (perf
  // rings with Options::timestamps). next_time(): the time of the next sample,
  // after handing any loss reports ahead of it to the lost handler; nullopt
  // when there is none. take_next(): hands that sample to the handler, flagged
  // late when an older one was delivered before it. commit(): publishes what
  // was taken.
  virtual bool timed() const noexcept { return false; }
  virtual std::optional<std::uint64_t> next_time(Pass&) { return std::nullopt; }
  virtual void take_next(Pass&, bool /*late*/) {}
  virtual void commit(const Pass&) noexcept {}

  // Perf rings: records the program counted as lost to a full ring. The
  // kernel reports them too, but only once a later record fits: the ring
  // reports whichever count is higher, so a loss is neither missed at the end
  // nor counted twice.
  virtual void counted_loss(std::uint64_t) {}

  // Whether epoll should report this ring only when the kernel wakes it. A
  // ring buffer's fd is readable for as long as a record is reserved, even
  // one the program has not submitted yet: level-triggered, the loop would
  // spin on it.
  virtual bool edge_triggered() const noexcept { return false; }

  // Counts this ring's timer in `timers` (the loop's) from now on, and no
  // longer in the counts it was in before; nullptr: in none.
  void count_timer_in(RingTimers* timers) noexcept {
    if (timers_) --(*timers_)[timer_];
    timers_ = timers;
    if (timers_) ++(*timers_)[timer_];
  }

  // Raises stats.fill_high_water to `bytes` waiting at the start of a drain.
  void note_fill(std::uint64_t bytes) noexcept {
    stats.fill_high_water = std::max(stats.fill_high_water, bytes);
  }

  int cpu() const noexcept { return stats.cpu; }  // -1: a ring shared by all CPUs
  std::uint64_t served_in = 0;  // the id of the last pass that drained it
  bool more = false;           // records left behind by a budget or a stop: serve again soon
  bool listed_more = false;     // in the loop's list of rings with more to serve
  std::uint32_t id = 0;         // the loop's id for it (Poller::add)
  CpuStats stats;

 protected:
  // A ring calls this whenever what it needs from the timer changes.
  void set_timer(RingTimer timer) noexcept {
    if (timer == timer_) return;
    if (timers_) --(*timers_)[timer_], ++(*timers_)[timer];
    timer_ = timer;
  }

 private:
  RingTimer timer_ = RingTimer::flush;
  RingTimers* timers_ = nullptr;
};

}  // namespace perfbuf::detail
