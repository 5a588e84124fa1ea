#include <perfbuf/reader.h>

#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <sys/epoll.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "sys.h"

namespace perfbuf {

std::vector<int> online_cpus() { return sys::read_cpu_list("/sys/devices/system/cpu/online"); }

std::size_t default_pages_per_cpu() {
  return std::max<std::size_t>(1, kDefaultRingBytes / sys::page_size());
}

namespace {

// Data area bytes the reader accepts per ring: large enough for any real use,
// small enough that a typo in pages_per_cpu is not a multi-gigabyte mapping.
constexpr std::size_t kMaxRingBytes = std::size_t(1) << 30;
// A record's size field is 16 bits, so no record is longer than this.
constexpr std::size_t kMaxRecordBytes = 65535;

// Every fd the reader puts in its epoll set carries this tag in the upper half
// of its epoll data, a ring's index in the lower half. An fd someone else adds
// (data 0, a small number, a pointer) is then recognised as foreign instead of
// being taken for a ring.
constexpr std::uint64_t kTokenTag = std::uint64_t{0x70666266} << 32;  // "pfbf"
constexpr std::uint64_t kWakeToken = kTokenTag | 0xffffffff;

Error bad_option(const std::string& what) { return Error(EINVAL, "perfbuf::Options: " + what); }

// Checks every option; fills in the defaults that depend on the machine.
void resolve_and_validate(Options& o) {
  if (o.pages_per_cpu == 0) o.pages_per_cpu = default_pages_per_cpu();
  const std::size_t pages = o.pages_per_cpu;
  if ((pages & (pages - 1)) != 0)
    throw bad_option("pages_per_cpu = " + std::to_string(pages) +
                     " must be a power of two (1, 2, 4, ... 128 ...) or 0 for the default; "
                     "the kernel maps rings only in such sizes");
  if (pages > kMaxRingBytes / sys::page_size())
    throw bad_option("pages_per_cpu = " + std::to_string(pages) + " is over the limit of " +
                     std::to_string(kMaxRingBytes / sys::page_size()) + " pages (1 GiB) per CPU");
  const std::size_t ring = pages * sys::page_size();
  switch (o.wakeup.mode) {
    case Wakeup::Mode::every_record:
      break;
    case Wakeup::Mode::every_n_records:
      if (o.wakeup.value == 0) throw bad_option("Wakeup::every(n) needs n >= 1");
      break;
    case Wakeup::Mode::watermark_bytes:
      if (o.wakeup.value >= ring)
        throw bad_option("Wakeup::watermark(" + std::to_string(o.wakeup.value) +
                         ") must be below the ring size of " + std::to_string(ring) +
                         " bytes, or the reader would never be woken before loss");
      break;
  }
  if (o.max_delay.count() <= 0 || o.max_delay > std::chrono::hours(24))
    throw bad_option("max_delay must be from 1 ms to 24 h (it bounds how long a record can wait)");
  if (o.busy_poll.count() < 0 || o.busy_poll > std::chrono::seconds(1))
    throw bad_option("busy_poll must be from 0 (off) to 1 s");
  switch (o.clock) {
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_REALTIME: case CLOCK_BOOTTIME:
    case CLOCK_TAI: case kPerfClock:
      break;
    default:
      throw bad_option("clock = " + std::to_string(o.clock) +
                       " is not a clock perf can stamp records with: use CLOCK_MONOTONIC, "
                       "CLOCK_MONOTONIC_RAW, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_TAI or kPerfClock");
  }
  for (std::size_t i = 0; i < o.cpus.size(); ++i) {
    if (o.cpus[i] < 0) throw bad_option("cpus holds a negative CPU id");
    if (std::find(o.cpus.begin(), o.cpus.begin() + i, o.cpus[i]) != o.cpus.begin() + i)
      throw bad_option("cpus lists CPU " + std::to_string(o.cpus[i]) + " twice");
  }
}

perf_event_attr ring_attr(const Options& o, std::size_t ring_bytes) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_BPF_OUTPUT;
  attr.sample_period = 1;
  attr.sample_type = PERF_SAMPLE_RAW | (o.timestamps ? PERF_SAMPLE_TIME : 0);
  if (o.clock != kPerfClock) {
    attr.use_clockid = 1;
    attr.clockid = o.clock;
  }
  switch (o.wakeup.mode) {
    case Wakeup::Mode::every_record:
      attr.wakeup_events = 1;
      break;
    case Wakeup::Mode::every_n_records:
      attr.wakeup_events = o.wakeup.value;
      break;
    case Wakeup::Mode::watermark_bytes:
      attr.watermark = 1;
      attr.wakeup_watermark =
          o.wakeup.value ? o.wakeup.value
                         : static_cast<std::uint32_t>(std::min<std::size_t>(ring_bytes / 4, 64 * 1024));
      break;
  }
  return attr;
}

// One CPU's ring: the perf event, its mapping and the parser over it.
struct Ring {
  int cpu;
  sys::Fd fd;
  sys::Mapping mapping;
  RingParser parser;
  CpuStats stats;
};

// Which reader of this process last stored its ring in a map slot. A slot
// holds one event: when a newer reader takes a slot over (or replaces an older
// reader by move-assignment), the older one must not empty it when it goes.
class SlotOwners {
 public:
  void claim(std::uint32_t map_id, int cpu, const void* owner) {
    std::lock_guard lock(mu_);
    owners_[{map_id, cpu}] = owner;
  }
  // True when `owner` still held the slot (it is then released).
  bool release(std::uint32_t map_id, int cpu, const void* owner) {
    std::lock_guard lock(mu_);
    const auto it = owners_.find({map_id, cpu});
    if (it == owners_.end() || it->second != owner) return false;
    owners_.erase(it);
    return true;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<std::uint32_t, int>, const void*> owners_;
};

SlotOwners& slot_owners() {
  static SlotOwners owners;
  return owners;
}

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

// What one pass over some rings did.
struct Pass {
  std::size_t records = 0;
  bool stopped = false;        // a handler returned Action::stop: the pass ends there
  std::optional<Error> error;  // the first corrupt ring; the other rings were still read

  Result<std::size_t> result() const {
    if (error) return *error;
    return records;
  }
};

Error foreign_fd_error(std::uint64_t token) {
  char data[19];
  std::snprintf(data, sizeof data, "%#llx", static_cast<unsigned long long>(token));
  return Error(EINVAL, std::string("poll: the reader's epoll set holds an fd the reader did not "
                                   "add (epoll data ") + data +
                           "); epoll_fd() is only for nesting in your own epoll or poll set: "
                           "add your fds to your own set, and use wake() to stop a poll()");
}

}  // namespace

struct Reader::Impl {
  Options options;
  SampleHandler on_sample;
  LostHandler on_lost;
  sys::Fd map_fd;  // our own duplicate, so the map outlives the reader's use of it
  std::uint32_t map_id = 0;
  sys::Fd epoll;
  sys::Fd wake;  // eventfd in the epoll set: wake() makes a waiting poll() return
  std::size_t ring_bytes = 0;
  std::vector<Ring> rings;
  std::vector<std::byte> scratch;  // wrapped records, shared by all rings
  std::vector<epoll_event> events;
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();

  ~Impl() {
    // Take our rings out of the map so the program stops writing to them,
    // unless another reader of this process has put its own there since.
    for (const Ring& r : rings)
      if (slot_owners().release(map_id, r.cpu, this)) sys::map_delete(map_fd.get(), r.cpu);
  }

  void drain(Ring& ring, Pass& pass);
  // Drains every ring; true if it got through all of them (no early stop).
  bool drain_all(Pass& pass);
  // The ring an epoll token stands for; nullptr when the reader did not add it.
  Ring* ring_of(std::uint64_t token) {
    const std::uint64_t index = token & 0xffffffff;
    if ((token & ~std::uint64_t{0xffffffff}) != kTokenTag || index >= rings.size()) return nullptr;
    return &rings[index];
  }
  bool any_readable() const {
    for (const Ring& r : rings)
      if (r.parser.readable() != 0) return true;
    return false;
  }
};

void Reader::Impl::drain(Ring& ring, Pass& pass) {
  if (pass.stopped) return;
  struct Visitor {
    Ring& ring;
    Impl& self;
    Action on_sample(const RawSample& raw) {
      ++ring.stats.records;
      ring.stats.bytes += raw.data.size();
      return self.on_sample(Sample{ring.cpu, raw.time_ns, raw.data});
    }
    void on_lost(std::uint64_t count) {
      ring.stats.lost += count;
      if (self.on_lost) self.on_lost(ring.cpu, count);
    }
  } visitor{ring, *this};
  const DrainResult r = ring.parser.drain(visitor, scratch);
  pass.records += r.records;
  pass.stopped = r.stopped;
  if (r.corrupt) {
    ++ring.stats.corrupt;
    if (!pass.error)
      pass.error = Error(EBADMSG, "ring of cpu " + std::to_string(ring.cpu) + ": " + r.corrupt +
                                      "; skipped the rest of the ring");
  }
}

bool Reader::Impl::drain_all(Pass& pass) {
  for (Ring& ring : rings) drain(ring, pass);
  return !pass.stopped;
}

Reader::Reader(const bpf_map* map, SampleHandler on_sample, LostHandler on_lost, Options options)
    : Reader(map ? bpf_map__fd(map) : -1, std::move(on_sample), std::move(on_lost),
             std::move(options)) {}

Reader::Reader(int map_fd, SampleHandler on_sample, LostHandler on_lost, Options options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  resolve_and_validate(options);
  if (!on_sample) throw Error(EINVAL, "perfbuf::Reader: a sample handler is required");
  s.options = std::move(options);
  s.on_sample = std::move(on_sample);
  s.on_lost = std::move(on_lost);

  s.map_fd = sys::dup_map_fd(map_fd);
  const sys::MapInfo info = sys::map_info(s.map_fd.get());
  s.map_id = info.id;
  if (info.type != BPF_MAP_TYPE_PERF_EVENT_ARRAY)
    throw Error(EINVAL, "map \"" + info.name + "\" (fd " + std::to_string(map_fd) +
                            ") has map type " + std::to_string(info.type) +
                            ", not BPF_MAP_TYPE_PERF_EVENT_ARRAY (" +
                            std::to_string(BPF_MAP_TYPE_PERF_EVENT_ARRAY) +
                            "): pass the map the program writes with bpf_perf_event_output()");

  const std::vector<int> cpus = s.options.cpus.empty() ? online_cpus() : s.options.cpus;
  if (cpus.empty()) throw Error(ENODEV, "no online CPU found in /sys/devices/system/cpu/online");
  for (int cpu : cpus)
    if (static_cast<std::uint32_t>(cpu) >= info.max_entries)
      throw Error(E2BIG, "map \"" + info.name + "\" has " + std::to_string(info.max_entries) +
                             " slots, but CPU " + std::to_string(cpu) +
                             " needs key " + std::to_string(cpu) +
                             ": leave max_entries unset (libbpf sizes it to the CPU count) "
                             "or make it larger than the highest CPU id");

  s.ring_bytes = s.options.pages_per_cpu * sys::page_size();
  s.scratch.resize(std::min(s.ring_bytes, kMaxRecordBytes + 1));
  s.epoll = sys::epoll_create();
  s.wake = sys::eventfd_create();
  sys::epoll_add(s.epoll.get(), s.wake.get(), kWakeToken);
  perf_event_attr attr = ring_attr(s.options, s.ring_bytes);
  s.rings.reserve(cpus.size());
  for (int cpu : cpus) {
    sys::Fd fd = sys::perf_event_open(attr, cpu);
    sys::Mapping mapping = sys::map_ring(fd.get(), s.ring_bytes + sys::page_size(), cpu);
    auto* control = static_cast<perf_event_mmap_page*>(mapping.get());
    std::span<std::byte> data(static_cast<std::byte*>(mapping.get()) + sys::page_size(),
                              s.ring_bytes);
    sys::epoll_add(s.epoll.get(), fd.get(), kTokenTag | s.rings.size());
    sys::map_set(s.map_fd.get(), cpu, fd.get());
    slot_owners().claim(s.map_id, cpu, &s);
    // Once in rings, Impl's destructor takes it out of the map again (reserved: cannot throw).
    s.rings.push_back(Ring{cpu, std::move(fd), std::move(mapping),
                           RingParser(control, data, s.options.timestamps), CpuStats{cpu}});
  }
  s.events.resize(s.rings.size() + 1);  // + the wake eventfd
}

Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;
Reader::~Reader() = default;

Result<std::size_t> Reader::poll(std::chrono::milliseconds timeout) {
  return poll(timeout, nullptr);
}

Result<std::size_t> Reader::poll(std::chrono::milliseconds timeout, const sigset_t* sigmask) {
  using clock = std::chrono::steady_clock;
  Impl& s = *impl_;
  // Negative, or too long to add to a time point without overflow: no limit.
  const bool forever = timeout.count() < 0 || timeout > std::chrono::hours(24 * 365);
  clock::time_point now = clock::now();
  const clock::time_point deadline = forever ? clock::time_point::max() : now + timeout;
  for (;;) {
    Pass pass;
    if (s.options.busy_poll.count() > 0) {
      const clock::time_point spin_end = std::min(deadline, now + s.options.busy_poll);
      while (!s.any_readable() && now < spin_end) now = clock::now();
      if (s.any_readable()) {
        if (s.drain_all(pass)) s.last_flush = now;
        if (pass.records > 0 || pass.error) {
          // No wait happened: deliver a signal the caller unblocks for the wait now.
          if (sigmask && deliver_pending(*sigmask))
            return Error(EINTR, "poll: interrupted by a signal");
          return pass.result();
        }
      }
    }
    const clock::time_point next_flush = s.last_flush + s.options.max_delay;
    const auto wait_ms =
        std::chrono::ceil<std::chrono::milliseconds>(std::min(deadline, next_flush) - now).count();
    const int n = ::epoll_pwait(s.epoll.get(), s.events.data(), static_cast<int>(s.events.size()),
                                static_cast<int>(std::clamp<std::int64_t>(wait_ms, 0, INT_MAX)),
                                sigmask);
    if (n < 0) {
      if (errno == EINTR) return Error(EINTR, "epoll_pwait: interrupted by a signal");
      return sys::last_error("epoll_pwait");
    }
    // Every ring epoll reported is drained, even after one fails: its readiness is used up.
    bool woken = false;
    std::optional<std::uint64_t> foreign;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t token = s.events[i].data.u64;
      if (token == kWakeToken) {
        sys::eventfd_clear(s.wake.get());
        woken = true;
      } else if (Ring* ring = s.ring_of(token)) {
        ++ring->stats.wakeups;
        s.drain(*ring, pass);
      } else {
        foreign = token;
      }
    }
    now = clock::now();
    // Records below the wakeup threshold: drain every ring at least every max_delay.
    if (!pass.stopped && now >= next_flush && s.drain_all(pass)) s.last_flush = now;
    // Waiting again would return at once for as long as the foreign fd is ready: a spin.
    if (foreign && !pass.error) pass.error = foreign_fd_error(*foreign);
    if (pass.records > 0 || pass.error || woken || now >= deadline) return pass.result();
  }
}

Result<std::size_t> Reader::consume() {
  Pass pass;
  if (impl_->drain_all(pass)) impl_->last_flush = std::chrono::steady_clock::now();
  return pass.result();
}

Result<std::size_t> Reader::consume_ring(std::size_t index) {
  if (index >= impl_->rings.size())
    return Error(EINVAL, "consume_ring(" + std::to_string(index) + "): there are only " +
                             std::to_string(impl_->rings.size()) + " rings");
  Pass pass;
  impl_->drain(impl_->rings[index], pass);
  return pass.result();
}

void Reader::wake() noexcept { sys::eventfd_signal(impl_->wake.get()); }

int Reader::epoll_fd() const noexcept { return impl_->epoll.get(); }
std::size_t Reader::ring_count() const noexcept { return impl_->rings.size(); }
int Reader::ring_cpu(std::size_t index) const { return impl_->rings.at(index).cpu; }
int Reader::ring_fd(std::size_t index) const { return impl_->rings.at(index).fd.get(); }
std::size_t Reader::ring_bytes() const noexcept { return impl_->ring_bytes; }
const Options& Reader::options() const noexcept { return impl_->options; }

std::vector<CpuStats> Reader::stats() const {
  std::vector<CpuStats> out;
  for (const Ring& r : impl_->rings) out.push_back(r.stats);
  return out;
}

CpuStats Reader::total_stats() const {
  CpuStats t;
  for (const Ring& r : impl_->rings) {
    t.records += r.stats.records;
    t.bytes += r.stats.bytes;
    t.lost += r.stats.lost;
    t.wakeups += r.stats.wakeups;
    t.corrupt += r.stats.corrupt;
  }
  return t;
}

}  // namespace perfbuf
