// A BPF_MAP_TYPE_PERF_EVENT_ARRAY: one PERF_COUNT_SW_BPF_OUTPUT event per CPU,
// its ring mapped and stored in the map at key = CPU id.
#include <linux/bpf.h>
#include <perfbuf/ring.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>

#include "sources.h"

namespace perfbuf::detail {

namespace {

// A record's size field is 16 bits, so no record is longer than this.
constexpr std::size_t kMaxRecordBytes = 65535;

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
      attr.wakeup_watermark = watermark_bytes(o.wakeup, ring_bytes);
      break;
  }
  return attr;
}

// Which source of this process last stored its ring in a map slot. A slot
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

class PerfRing final : public PolledRing {
 public:
  PerfRing(int cpu, int index, sys::Fd fd, sys::Mapping mapping, std::size_t ring_bytes,
           bool timestamps, const Handlers& handlers, std::vector<std::byte>& scratch)
      : PolledRing(cpu, index),
        fd_(std::move(fd)),
        mapping_(std::move(mapping)),
        parser_(static_cast<perf_event_mmap_page*>(mapping_.get()),
                {static_cast<std::byte*>(mapping_.get()) + sys::page_size(), ring_bytes},
                timestamps),
        handlers_(handlers),
        scratch_(scratch),
        timestamps_(timestamps) {}

  int fd() const noexcept override { return fd_.get(); }
  bool readable() const noexcept override { return parser_.readable() != 0; }

  bool timed() const noexcept override { return timestamps_; }

  std::optional<std::uint64_t> next_time(Pass& pass) override {
    for (;;) {
      const std::optional<RingRecord> rec = parser_.peek(scratch_);
      if (!rec) {
        if (parser_.corrupt()) {
          report_corrupt(pass, parser_.corrupt());
          parser_.skip_to_head();
        }
        return std::nullopt;
      }
      if (rec->kind == RingRecord::Kind::sample) return rec->sample.time_ns;
      parser_.advance();  // loss reports are not ordered: they go out at once
      on_lost(rec->lost);
    }
  }

  void take_next(Pass& pass, bool late) override {
    const std::optional<RingRecord> rec = parser_.peek(scratch_);  // what next_time() saw
    if (!rec) return;
    parser_.advance();  // before the handler: a record whose handler throws counts as consumed
    ++pass.records;
    ++stats.records;
    stats.bytes += rec->sample.data.size();
    if (late) ++stats.late;
    const Sample sample{cpu(), rec->sample.time_ns, rec->sample.data, late};
    if (handlers_.on_sample(sample) == Action::stop) pass.stopped = true;
  }

  void commit() noexcept override { parser_.commit(); }

  void drain(Pass& pass, std::uint64_t budget) override {
    struct Visitor {
      PerfRing& ring;
      std::uint64_t budget;
      bool out_of_budget = false;
      Action on_sample(const RawSample& raw) {
        ++ring.stats.records;
        ring.stats.bytes += raw.data.size();
        const Action a = ring.handlers_.on_sample(Sample{ring.cpu(), raw.time_ns, raw.data});
        if (a == Action::next && --budget == 0) {
          out_of_budget = true;
          return Action::stop;
        }
        return a;
      }
      void on_lost(std::uint64_t count) { ring.on_lost(count); }
    } visitor{*this, budget};
    const DrainResult r = parser_.drain(visitor, scratch_);
    pass.records += r.records;
    pass.stopped = r.stopped && !visitor.out_of_budget;
    more = r.stopped && parser_.readable() != 0;  // out of budget, or the handler stopped
    if (r.corrupt) report_corrupt(pass, r.corrupt);
  }

  void counted_loss(std::uint64_t count) override {
    counted_lost_ += count;
    report_lost();
  }

 private:
  void on_lost(std::uint64_t count) {
    kernel_lost_ += count;
    report_lost();
  }
  void report_lost() {
    const std::uint64_t grown = std::max(kernel_lost_, counted_lost_) - stats.lost;
    if (grown == 0) return;
    stats.lost += grown;
    if (handlers_.on_lost) handlers_.on_lost(cpu(), grown);
  }
  void report_corrupt(Pass& pass, const char* why) {
    ++stats.corrupt;
    pass.add_error(Error(EBADMSG, "ring of cpu " + std::to_string(cpu()) + ": " + why +
                                      "; skipped the rest of the ring"));
  }

  sys::Fd fd_;
  sys::Mapping mapping_;
  RingParser parser_;
  const Handlers& handlers_;
  std::vector<std::byte>& scratch_;
  bool timestamps_;
  std::uint64_t kernel_lost_ = 0;   // from the kernel's loss records
  std::uint64_t counted_lost_ = 0;  // from the program's counts (Reader::count_outputs)
};

class PerfSource final : public Source {
 public:
  PerfSource(sys::Fd map_fd, std::uint32_t map_id, Handlers handlers)
      : Source(std::move(handlers)), map_fd_(std::move(map_fd)), map_id_(map_id) {}
  ~PerfSource() override {
    // Take our rings out of the map so the program stops writing to them,
    // unless another reader of this process has put its own there since.
    for (const auto& r : rings)
      if (slot_owners().release(map_id_, r->cpu(), this)) sys::map_delete(map_fd_.get(), r->cpu());
    rings.clear();  // before the handlers and scratch buffer they refer to
  }

  void open(const std::vector<int>& cpus, const Options& options, int index) {
    const std::size_t ring_bytes = options.pages_per_cpu * sys::page_size();
    scratch_.resize(std::min(ring_bytes, kMaxRecordBytes + 1));
    perf_event_attr attr = ring_attr(options, ring_bytes);
    rings.reserve(cpus.size());
    for (int cpu : cpus) {
      sys::Fd fd = sys::perf_event_open(attr, cpu);
      sys::Mapping mapping = sys::map_ring(fd.get(), ring_bytes + sys::page_size(), cpu);
      auto ring = std::make_unique<PerfRing>(cpu, index, std::move(fd), std::move(mapping),
                                             ring_bytes, options.timestamps, handlers, scratch_);
      // In rings first (reserved: cannot throw), so that whatever fails next,
      // the destructor takes the ring out of the map again.
      rings.push_back(std::move(ring));
      slot_owners().claim(map_id_, cpu, this);
      sys::map_set(map_fd_.get(), cpu, rings.back()->fd());
    }
  }

 private:
  PolledRing* ring_of_cpu(int cpu) override {
    for (const auto& r : rings)
      if (r->cpu() == cpu) return r.get();
    return nullptr;
  }

  sys::Fd map_fd_;  // our own duplicate, so the map outlives the reader's use of it
  std::uint32_t map_id_;
  std::vector<std::byte> scratch_;  // wrapped records, shared by the rings of this map
};

}  // namespace

std::unique_ptr<Source> open_perf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                         Handlers handlers, const Options& options, int index) {
  const std::vector<int> cpus = options.cpus.empty() ? online_cpus() : options.cpus;
  if (cpus.empty()) throw Error(ENODEV, "no online CPU found in /sys/devices/system/cpu/online");
  for (int cpu : cpus)
    if (static_cast<std::uint32_t>(cpu) >= info.max_entries)
      throw Error(E2BIG, "map \"" + info.name + "\" has " + std::to_string(info.max_entries) +
                             " slots, but CPU " + std::to_string(cpu) + " needs key " +
                             std::to_string(cpu) +
                             ": leave max_entries unset (libbpf sizes it to the CPU count) "
                             "or make it larger than the highest CPU id");
  auto source = std::make_unique<PerfSource>(std::move(map_fd), info.id, std::move(handlers));
  source->open(cpus, options, index);
  return source;
}

}  // namespace perfbuf::detail
