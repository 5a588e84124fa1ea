#include "poller.h"

#include <pthread.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <exception>
#include <string>

namespace perfbuf::detail {

namespace {

// Every fd the loop puts in its epoll set carries this tag in the upper half
// of its epoll data, a ring's id in the lower half. An fd someone else adds
// (data 0, a small number, a pointer) is then recognised as foreign instead of
// being taken for a ring.
constexpr std::uint64_t kTokenTag = std::uint64_t{0x70666266} << 32;  // "pfbf"
constexpr std::uint64_t kWakeToken = kTokenTag | 0xffffffff;
constexpr std::uint64_t kHotplugToken = kTokenTag | 0xfffffffe;

// Runs the handlers of signals that are pending and that `wait_mask` unblocks,
// as a wait under that mask would have. True if there was one.
bool deliver_pending(const sigset_t& wait_mask) {
  sigset_t pending;
  if (sigpending(&pending) != 0) return false;
  bool any = false;
  for (int sig = 1; sig < NSIG && !any; ++sig)
    any = sigismember(&pending, sig) == 1 && sigismember(&wait_mask, sig) == 0;
  if (!any) return false;
  sigset_t saved;
  pthread_sigmask(SIG_SETMASK, &wait_mask, &saved);  // the handler runs here
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return true;
}

Error foreign_fd_error(std::uint64_t token) {
  char data[19];
  std::snprintf(data, sizeof data, "%#llx", static_cast<unsigned long long>(token));
  return Error(EINVAL, std::string("poll: the reader's epoll set holds an fd the reader did not "
                                   "add (epoll data ") + data +
                           "); epoll_fd() is only for nesting in your own epoll or poll set: "
                           "add your fds to your own set, and use wake() to stop a poll()");
}

// Counts a drain of `ring` and its time (the ring notes how full it was).
// The drain starts at pass.now and ends with the clock read that moves
// pass.now on.
class Telemetry {
 public:
  Telemetry(PolledRing& ring, Pass& pass) : ring_(ring), pass_(pass), start_(pass.now) {
    ++ring.stats.drains;
  }
  ~Telemetry() {  // also when a handler throws
    pass_.now = steady_now();
    ring_.stats.drain_ns +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(pass_.now - start_).count();
  }
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

 private:
  PolledRing& ring_;
  Pass& pass_;
  Pass::clock::time_point start_;
};

}  // namespace

Poller::Poller(LoopOptions options)
    : options_(options), epoll_(sys::epoll_create()), wake_(sys::eventfd_create()) {
  sys::epoll_add(epoll_.get(), wake_.get(), kWakeToken);
  events_.resize(1);
}

bool Poller::on_cpus_changed(std::function<void(const sys::CpuEvents&)> changed) {
  if (uevents_.get() < 0) {
    uevents_ = sys::uevent_open();
    if (uevents_.get() < 0) return false;
    sys::epoll_add(epoll_.get(), uevents_.get(), kHotplugToken);
  }
  cpus_changed_ = std::move(changed);
  return true;
}

void Poller::rewatch(PolledRing& ring) {
  if (ring.id >= rings_.size() || rings_[ring.id] != &ring) return;
  sys::epoll_add(epoll_.get(), ring.fd(), kTokenTag | ring.id, ring.edge_triggered());
}

std::uint32_t Poller::add(PolledRing& ring) {
  auto free = std::find(rings_.begin(), rings_.end(), nullptr);
  const auto id = static_cast<std::uint32_t>(free - rings_.begin());
  if (id >= 0xfffffffe) throw Error(EMFILE, "poll loop: too many rings");
  sys::epoll_add(epoll_.get(), ring.fd(), kTokenTag | id, ring.edge_triggered());
  if (free == rings_.end())
    rings_.push_back(&ring);
  else
    *free = &ring;
  ring.id = id;
  ring.count_timer_in(&timers_);
  // A ring is listed at most once: listing never allocates (nor throws) in a drain.
  more_.reserve(rings_.size());
  serving_.reserve(rings_.size());
  events_.resize(rings_.size() + 2);  // an fd a ring, the wake eventfd, the hotplug socket
  return id;
}

void Poller::remove(std::uint32_t id) noexcept {
  if (id >= rings_.size() || !rings_[id]) return;
  sys::epoll_del(epoll_.get(), rings_[id]->fd());
  rings_[id]->count_timer_in(nullptr);
  rings_[id] = nullptr;  // (an entry left in more_ is skipped)
}

PolledRing* Poller::ring_of(std::uint64_t token) const {
  const std::uint64_t id = token & 0xffffffff;
  if ((token & ~std::uint64_t{0xffffffff}) != kTokenTag || id >= rings_.size()) return nullptr;
  return rings_[id];
}

// Inlined where it is called: the loop of a wakeup runs it without a frame of its own.
[[gnu::hot, gnu::always_inline]] inline void Poller::drain(PolledRing& ring, Pass& pass, std::uint64_t budget) {
  if (pass.stopped) {  // a handler ended the pass: what this ring holds waits for the next
    list_if_readable(ring);
    return;
  }
  // At most one budget per ring per pass, whether woken, left over or flushed.
  if (budget != kNoBudget && ring.served_in == pass.id) {
    list_if_more(ring);  // still listed for the next pass
    return;
  }
  ring.served_in = pass.id;
  ring.more = false;
  try {
    Telemetry t(ring, pass);
    ring.drain(pass, budget);
  } catch (...) {
    list_if_readable(ring);  // a handler threw: its wakeup is used up, serve it without one
    throw;
  }
  list_if_more(ring);
}

void Poller::list_if_more(PolledRing& ring) {
  if (!ring.more || ring.listed_more) return;
  ring.listed_more = true;
  more_.push_back(ring.id);
}

void Poller::list_if_readable(PolledRing& ring) {
  ring.more = ring.more || ring.readable();
  list_if_more(ring);
}

[[gnu::hot]] bool Poller::drain_all(Pass& pass, std::uint64_t budget) {
  if (options_.ordered) {
    drain_ordered(pass, budget, /*hold_recent=*/budget != kNoBudget);
    return !pass.stopped;
  }
  for (PolledRing* ring : rings_)
    if (ring) drain(*ring, pass, budget);
  return !pass.stopped;
}

void Poller::drain_ordered(Pass& pass, std::uint64_t budget, bool hold_recent) {
  std::vector<PolledRing*> timed;
  for (PolledRing* ring : rings_)
    if (ring && ring->timed()) timed.push_back(ring);
  // Publishes what was taken on every way out, exceptions included.
  struct CommitAll {
    std::vector<PolledRing*>& rings;
    const Pass& pass;
    Poller& poller;
    const int unwinding = std::uncaught_exceptions();
    ~CommitAll() {
      const bool threw = std::uncaught_exceptions() > unwinding;
      for (PolledRing* r : rings) {
        r->commit(pass);
        if (threw)
          poller.list_if_readable(*r);
        else
          poller.list_if_more(*r);
      }
    }
  } commit{timed, pass, *this};
  // Records newer than this may still have older ones on their way into
  // another ring: they wait for a later pass (at most max_delay later).
  // consume() takes all that was written before it began, so it ends even
  // while the kernel keeps writing.
  timespec now;
  clock_gettime(options_.clock, &now);
  const std::uint64_t now_ns = now.tv_sec * 1000000000ull + now.tv_nsec;
  const std::uint64_t window_ns =
      hold_recent ? std::chrono::nanoseconds(options_.window).count() : 0;
  const std::uint64_t limit = now_ns > window_ns ? now_ns - window_ns : 0;
  std::vector<std::optional<std::uint64_t>> next(timed.size());
  // The merge's time goes to the rings by the records each gave.
  const Pass::clock::time_point merge_start = pass.now;
  std::vector<std::uint64_t> records_before(timed.size());
  for (std::size_t i = 0; i < timed.size(); ++i) {
    records_before[i] = timed[i]->stats.records;
    timed[i]->note_fill(timed[i]->fill());
    ++timed[i]->stats.drains;
  }
  for (std::size_t i = 0; i < timed.size(); ++i) {
    timed[i]->more = false;
    next[i] = timed[i]->next_time(pass);
  }
  // Linear in the ring count per record: fine for the CPU counts of today's machines.
  const std::uint64_t total = budget == kNoBudget ? kNoBudget : budget * std::max<std::size_t>(1, timed.size());
  std::uint64_t taken = 0;
  release_at_ = clock::time_point::max();
  while (!pass.stopped) {
    std::size_t best = timed.size();
    for (std::size_t i = 0; i < timed.size(); ++i)
      if (next[i] && (best == timed.size() || *next[i] < *next[best])) best = i;
    if (best == timed.size()) break;
    if (*next[best] > limit) {  // held back: due once the window has passed over it
      // Not sooner than half a window from now, so that a steady stream is
      // released in batches rather than a pass per record.
      const clock::duration batch = std::min<clock::duration>(options_.window / 2, options_.max_delay);
      release_at_ = pass.now + std::max<clock::duration>(
                                       std::chrono::nanoseconds(*next[best] - limit), batch);
      break;
    }
    if (taken++ == total) {  // out of budget: come back without waiting
      for (std::size_t i = 0; i < timed.size(); ++i) timed[i]->more = next[i].has_value();
      break;
    }
    const bool late = *next[best] < last_time_;
    last_time_ = std::max(last_time_, *next[best]);
    timed[best]->take_next(pass, late);
    next[best] = timed[best]->next_time(pass);
  }
  std::uint64_t merged = 0;
  for (std::size_t i = 0; i < timed.size(); ++i) merged += timed[i]->stats.records - records_before[i];
  pass.now = clock::now();
  if (merged > 0) {
    const std::uint64_t merge_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(pass.now - merge_start).count();
    for (std::size_t i = 0; i < timed.size(); ++i)
      timed[i]->stats.drain_ns += merge_ns * (timed[i]->stats.records - records_before[i]) / merged;
  }
  for (PolledRing* ring : rings_)  // records without a time: as they come
    if (ring && !ring->timed()) drain(*ring, pass, budget);
}

void Poller::drain_more(Pass& pass) {
  if (rebuild_more_) {  // a handler threw while the list was served: rebuild it from the rings
    rebuild_more_ = false;
    more_.clear();
    for (PolledRing* ring : rings_)
      if (ring) {
        ring->listed_more = false;
        list_if_more(*ring);
      }
  }
  if (more_.empty()) return;
  // Served from a list of their own: a drain lists its ring again if it leaves more.
  serving_.swap(more_);
  bool any = false;
  for (std::uint32_t id : serving_) {
    if (id >= rings_.size() || !rings_[id]) continue;  // removed since
    rings_[id]->listed_more = false;
    any = any || rings_[id]->more;
  }
  try {
    if (options_.ordered) {
      if (any) drain_ordered(pass, options_.ring_budget, /*hold_recent=*/true);
    } else {
      for (std::uint32_t id : serving_)
        if (id < rings_.size() && rings_[id] && rings_[id]->more)
          drain(*rings_[id], pass, options_.ring_budget);
    }
  } catch (...) {
    rebuild_more_ = true;  // a handler threw: the rings not reached yet are off the list
    serving_.clear();
    throw;
  }
  serving_.clear();
}

bool Poller::any_readable() const {
  return std::any_of(rings_.begin(), rings_.end(),
                     [](const PolledRing* r) { return r && r->readable(); });
}

// Busy polling: spins until a ring is readable or busy_poll has passed, and
// drains them all if one is. A result when that ends the poll().
std::optional<Result<std::size_t>> Poller::spin(Pass& pass, clock::time_point& now,
                                                clock::time_point deadline,
                                                const sigset_t* sigmask) {
  const clock::time_point spin_end = std::min(deadline, now + options_.busy_poll);
  while (!any_readable() && now < spin_end) now = clock::now();
  if (!any_readable()) return std::nullopt;
  pass.now = now;
  if (drain_all(pass, options_.ring_budget)) last_flush_ = now;
  last_clock_read_ = pass.now;
  if (pass.records == 0 && !pass.error) return std::nullopt;
  // No wait happened: deliver a signal the caller unblocks for the wait now.
  if (sigmask && deliver_pending(*sigmask)) return Error(EINTR, "poll: interrupted by a signal");
  return pass.result();
}

// The events of a wait that are not rings: the wake eventfd, the hotplug
// socket, an fd someone else put in the set. True if wake() was called.
bool Poller::serve_other_events(int n, Pass& pass) {
  bool woken = false;
  sys::CpuEvents cpu_events;
  std::optional<std::uint64_t> foreign;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t token = events_[i].data.u64;
    if (token == kWakeToken) {
      sys::eventfd_clear(wake_.get());
      woken = true;
    } else if (token == kHotplugToken) {
      cpu_events = sys::uevent_read_cpus(uevents_.get());
    } else if (!ring_of(token)) {
      foreign = token;
    }
  }
  // After the scan: following the CPUs may add rings (and grow events_).
  if (cpu_events.any && cpus_changed_) {
    try {
      cpus_changed_(cpu_events);
    } catch (const Error& e) {
      pass.add_error(e);
    }
  }
  // Waiting again would return at once for as long as the foreign fd is ready: a spin.
  if (foreign) pass.add_error(foreign_fd_error(*foreign));
  return woken;
}

// The common wakeup, one ring with a record or a few and nothing else to
// do, runs through the loop below only: what else can happen (busy polling,
// other fds, rings left with records, a flush due) is behind one test each,
// out of line, so that a wakeup brings in little code.
[[gnu::hot]] Result<std::size_t> Poller::poll(std::chrono::milliseconds timeout,
                                             const sigset_t* sigmask) {
  // Negative, or too long to add to a time point without overflow: no limit.
  const bool forever = timeout.count() < 0 || timeout > std::chrono::hours(24 * 365);
  clock::time_point now = last_clock_read_ = steady_now();
  const clock::time_point deadline = forever ? clock::time_point::max() : now + timeout;
  for (;;) {
    Pass pass(++passes_, now);
    if (options_.busy_poll.count() > 0) [[unlikely]] {
      if (auto done = spin(pass, now, deadline, sigmask)) return std::move(*done);
    }
    const std::optional<clock::duration> flush_every = flush_interval();
    const clock::time_point next_flush =
        std::min(flush_every ? last_flush_ + *flush_every : clock::time_point::max(), release_at_);
    // Rings left with records by their budget are served again without a wait.
    const clock::duration wait =
        more_to_serve() ? clock::duration::zero()
                   : std::clamp<clock::duration>(std::min(deadline, next_flush) - now,
                                                 clock::duration::zero(), std::chrono::hours(24));
    const int n = sys::epoll_wait_for(epoll_.get(), events_.data(),
                                      static_cast<int>(events_.size()), wait, sigmask);
    if (n < 0) [[unlikely]] {
      if (errno == EINTR) return Error(EINTR, "epoll_pwait: interrupted by a signal");
      return sys::last_error("epoll_pwait");
    }
    pass.now = steady_now();
    // Every ring epoll reported is drained, even after one fails: its readiness is used up.
    bool others = false, ready = false;
    for (int i = 0; i < n; ++i) {
      PolledRing* ring = ring_of(events_[i].data.u64);
      if (!ring) [[unlikely]] {  // the wake eventfd, the hotplug socket, a foreign fd
        others = true;
      } else {
        ++ring->stats.wakeups;
        if (!options_.ordered) drain(*ring, pass, options_.ring_budget);
        else ready = true;  // merged below, with every other ring
      }
    }
    const bool woken = others && serve_other_events(n, pass);
    if (ready) drain_ordered(pass, options_.ring_budget, /*hold_recent=*/true);
    else if (more_to_serve()) drain_more(pass);
    now = last_clock_read_ = pass.now;
    // Records below the wakeup threshold: drain every ring at least every
    // flush_every; and records the reorder window held back, once it has passed.
    if (!pass.stopped && now >= next_flush && drain_all(pass, options_.ring_budget))
      last_flush_ = now;
    if (pass.records > 0 || pass.error || woken || now >= deadline) return pass.result();
  }
}

// Without a budget: everything up to where each ring's head was when its drain began.
Result<std::size_t> Poller::consume() {
  Pass pass(++passes_, clock::now());
  pass.take_all = true;
  if (drain_all(pass, kNoBudget)) last_flush_ = pass.now;
  last_clock_read_ = pass.now;
  return pass.result();
}

Result<std::size_t> Poller::consume(PolledRing& ring) {
  Pass pass(++passes_, clock::now());
  pass.take_all = true;
  drain(ring, pass, kNoBudget);
  last_clock_read_ = pass.now;
  return pass.result();
}

}  // namespace perfbuf::detail
