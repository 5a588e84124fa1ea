#include <perfbuf/reader.h>

#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "poller.h"
#include "sources.h"
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
    case Wakeup::Mode::adaptive:
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
  if (o.ring_budget == 0) throw bad_option("ring_budget must be at least 1 record");
  if (o.ordered) {
    if (o.clock == kPerfClock)
      throw bad_option("ordered needs a clock user space can read: perf's own (kPerfClock) is not");
    if (o.reorder_window.count() < 0 || o.reorder_window > std::chrono::seconds(10))
      throw bad_option("reorder_window must be from 0 to 10 s");
    o.timestamps = true;  // the merge orders by them
  }
  if (!sys::perf_can_stamp_with(o.clock))
    throw bad_option("clock = " + std::to_string(o.clock) +
                     " is not a clock perf can stamp records with: use CLOCK_MONOTONIC, "
                     "CLOCK_MONOTONIC_RAW, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_TAI or kPerfClock");
  if (const std::string problem = sys::cpu_list_problem(o.cpus); !problem.empty())
    throw bad_option(problem);
}

}  // namespace

struct Reader::Impl {
  Options options;
  detail::Poller poller;
  std::vector<std::unique_ptr<detail::Source>> sources;
  std::vector<detail::PolledRing*> rings;  // every source's, in the order they were added

  explicit Impl(Options o)
      : options(std::move(o)),
        poller({options.max_delay, options.busy_poll, options.ring_budget, options.ordered,
                options.reorder_window, options.clock}) {
    // Impl does not move (Reader holds it by pointer): `this` stays valid.
    poller.on_cpus_changed([this](const sys::CpuEvents& events) { follow_cpus(events); });
  }

  bool paused = false;
  void pause(bool on) {
    for (const auto& source : sources)
      if (const auto why = source->why_not_pausable())
        throw Error(EOPNOTSUPP, std::string(on ? "pause" : "resume") + "(): " + *why);
    for (auto& source : sources) source->pause(on);
    paused = on;
  }

  // CPUs that went offline and have not been seen online since.
  std::set<int> went_offline;

  // CPUs went offline or online: rings of CPUs back online get new events,
  // new CPUs get rings (see Source::follow_cpus).
  void follow_cpus(const sys::CpuEvents& events) {
    const std::vector<int> online = online_cpus();
    went_offline.insert(events.offline.begin(), events.offline.end());
    if (events.lost)  // an offline event may be among those missed
      for (const detail::PolledRing* ring : rings) went_offline.insert(ring->cpu());
    std::set<int> returned;
    for (int cpu : online)
      if (went_offline.erase(cpu)) returned.insert(cpu);
    for (auto& source : sources) {
      const detail::Source::CpuChange change = source->follow_cpus(online, returned);
      for (detail::PolledRing* ring : change.reopened) poller.rewatch(*ring);
      for (detail::PolledRing* ring : change.added) {
        poller.add(*ring);
        rings.push_back(ring);
      }
    }
  }

  void add(int map_fd, SampleHandler on_sample, LostHandler on_lost) {
    if (!on_sample) throw Error(EINVAL, "perfbuf::Reader: a sample handler is required");
    sys::Fd fd = sys::dup_map_fd(map_fd);
    const sys::MapInfo info = sys::map_info(fd.get());
    const int index = static_cast<int>(sources.size());
    detail::Handlers handlers{std::move(on_sample), std::move(on_lost)};
    std::unique_ptr<detail::Source> source;
    if (info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY)
      source = detail::open_perf_source(std::move(fd), info, std::move(handlers), options, index);
    else if (info.type == BPF_MAP_TYPE_RINGBUF)
      source = detail::open_ringbuf_source(std::move(fd), info, std::move(handlers), options, index);
    else
      throw Error(EINVAL, "map \"" + info.name + "\" (fd " + std::to_string(map_fd) +
                              ") has map type " + std::to_string(info.type) +
                              ", not BPF_MAP_TYPE_PERF_EVENT_ARRAY (" +
                              std::to_string(BPF_MAP_TYPE_PERF_EVENT_ARRAY) +
                              ") or BPF_MAP_TYPE_RINGBUF (" + std::to_string(BPF_MAP_TYPE_RINGBUF) +
                              "): pass the map the program writes with bpf_perf_event_output() "
                              "or bpf_ringbuf_output()/bpf_ringbuf_submit()");
    std::vector<std::uint32_t> ids;
    try {
      for (auto& ring : source->rings) ids.push_back(poller.add(*ring));
    } catch (...) {
      for (std::uint32_t id : ids) poller.remove(id);
      throw;  // the source goes, emptying the map slots it took
    }
    for (auto& ring : source->rings) rings.push_back(ring.get());
    sources.push_back(std::move(source));
  }

  void count_outputs(int counts_fd, int source) {
    if (source < 0 || static_cast<std::size_t>(source) >= sources.size())
      throw Error(EINVAL, "count_outputs: there is no map " + std::to_string(source) +
                              " (0: the constructor's, 1: the first add()ed; this reader has " +
                              std::to_string(sources.size()) + ")");
    sources[source]->count_outputs(sys::dup_map_fd(counts_fd));
    counted = true;
    last_count_read = {};  // read at the next chance
  }

  // After a poll or a consume: reads the programs' output counts (one
  // system call per counted map) if max_delay has passed since the last
  // read, or `now`: a loss is reported within the delivery bound. The time
  // is the loop's last clock read, not one more. A failed read is the
  // result's error (a loss report missed is worth one).
  void read_counts(Result<std::size_t>& result, bool now) {
    if (!counted) return;
    const auto t = poller.last_clock_read();
    if (!now && t - last_count_read < options.max_delay) return;
    last_count_read = t;
    try {
      for (auto& source : sources) source->read_counts();
    } catch (const Error& e) {
      if (result) result = e;
    }
  }
  // poll() when some map is counted (one return: the result is built in
  // the caller's place).
  Result<std::size_t> poll_counted(std::chrono::milliseconds timeout, const sigset_t* sigmask) {
    Result<std::size_t> result = poller.poll(timeout, sigmask);
    read_counts(result, /*now=*/false);
    return result;
  }
  bool counted = false;  // some map's outputs are counted (count_outputs)
  std::chrono::steady_clock::time_point last_count_read{};

  detail::PolledRing& ring(std::size_t index, const char* call) const {
    if (index >= rings.size())
      throw Error(EINVAL, std::string(call) + "(" + std::to_string(index) +
                              "): there are only " + std::to_string(rings.size()) + " rings");
    return *rings[index];
  }
};

Reader::Reader(const bpf_map* map, SampleHandler on_sample, LostHandler on_lost, Options options)
    : Reader(map ? bpf_map__fd(map) : -1, std::move(on_sample), std::move(on_lost),
             std::move(options)) {}

Reader::Reader(int map_fd, SampleHandler on_sample, LostHandler on_lost, Options options) {
  resolve_and_validate(options);
  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->add(map_fd, std::move(on_sample), std::move(on_lost));
}

void Reader::add(int map_fd, SampleHandler on_sample, LostHandler on_lost) {
  impl_->add(map_fd, std::move(on_sample), std::move(on_lost));
}

void Reader::add(const bpf_map* map, SampleHandler on_sample, LostHandler on_lost) {
  add(map ? bpf_map__fd(map) : -1, std::move(on_sample), std::move(on_lost));
}

Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;
Reader::~Reader() = default;

[[gnu::hot]] Result<std::size_t> Reader::poll(std::chrono::milliseconds timeout) {
  return poll(timeout, nullptr);
}

// The first of the hot functions in the library (GCC emits a function
// before its callers, so before the one above, which calls it: not inlined,
// for that order; CMakeLists.txt): it starts a page, so that the
// path of a wakeup spans as few pages as it can (scripts/wakeup-cost.py
// --pages shows them; a compiler that emits the two the other way round
// costs one page more).
[[gnu::hot, gnu::noinline, gnu::aligned(4096)]] Result<std::size_t> Reader::poll(std::chrono::milliseconds timeout,
                                                                 const sigset_t* sigmask) {
  // (The result is built in the caller's place: no Result moved.)
  if (!impl_->counted) [[likely]] return impl_->poller.poll(timeout, sigmask);
  return impl_->poll_counted(timeout, sigmask);
}

Result<std::size_t> Reader::consume() {
  Result<std::size_t> result = impl_->poller.consume();
  impl_->read_counts(result, /*now=*/true);
  return result;
}

void Reader::count_outputs(int counts_map_fd, int source) {
  impl_->count_outputs(counts_map_fd, source);
}

void Reader::count_outputs(const bpf_map* counts_map, int source) {
  count_outputs(counts_map ? bpf_map__fd(counts_map) : -1, source);
}

Result<std::size_t> Reader::consume_ring(std::size_t index) {
  if (index >= impl_->rings.size())
    return Error(EINVAL, "consume_ring(" + std::to_string(index) + "): there are only " +
                             std::to_string(impl_->rings.size()) + " rings");
  Result<std::size_t> result = impl_->poller.consume(*impl_->rings[index]);
  impl_->read_counts(result, /*now=*/false);
  return result;
}

void Reader::pause() { impl_->pause(true); }
void Reader::resume() { impl_->pause(false); }
bool Reader::paused() const noexcept { return impl_->paused; }

void Reader::wake() noexcept { impl_->poller.wake(); }

int Reader::epoll_fd() const noexcept { return impl_->poller.epoll_fd(); }
std::size_t Reader::ring_count() const noexcept { return impl_->rings.size(); }
int Reader::ring_cpu(std::size_t index) const { return impl_->ring(index, "ring_cpu").cpu(); }
int Reader::ring_fd(std::size_t index) const { return impl_->ring(index, "ring_fd").fd(); }
std::size_t Reader::ring_bytes() const noexcept {
  return impl_->options.pages_per_cpu * sys::page_size();
}
const Options& Reader::options() const noexcept { return impl_->options; }

std::vector<CpuStats> Reader::stats() const {
  std::vector<CpuStats> out;
  for (const detail::PolledRing* r : impl_->rings) out.push_back(r->stats);
  return out;
}

CpuStats Reader::total_stats() const {
  CpuStats t;
  t.source = -1;
  const auto add = [&t](const CpuStats& s) {
    t.records += s.records;
    t.bytes += s.bytes;
    t.lost += s.lost;
    t.attempts += s.attempts;
    t.failed += s.failed;
    t.wakeups += s.wakeups;
    t.drains += s.drains;
    t.drain_ns += s.drain_ns;
    t.fill_high_water = std::max(t.fill_high_water, s.fill_high_water);
    t.corrupt += s.corrupt;
    t.late += s.late;
    t.reopens += s.reopens;
    t.switches += s.switches;
  };
  for (const detail::PolledRing* r : impl_->rings) add(r->stats);
  for (const auto& source : impl_->sources) add(source->elsewhere);
  return t;
}

}  // namespace perfbuf
