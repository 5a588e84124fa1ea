// A BPF_MAP_TYPE_PERF_EVENT_ARRAY: one PERF_COUNT_SW_BPF_OUTPUT event per CPU,
// its ring mapped and stored in the map at key = CPU id.
#include <linux/bpf.h>
#include <unistd.h>
#include <perfbuf/ring.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "adaptive.h"
#include "slot_owners.h"
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
  // read() then tells how many records the ring dropped so far (Linux 6.0+),
  // also when no later record brings the kernel's loss record.
  attr.read_format = PERF_FORMAT_LOST;
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
    case Wakeup::Mode::adaptive:  // the polled ring: wakes a reader that polls too rarely
      attr.watermark = 1;
      attr.wakeup_watermark = watermark_bytes(o.wakeup, ring_bytes);
      break;
  }
  return attr;
}

// One perf event and its mapped ring.
struct EventRing {
  EventRing(sys::Fd event, sys::Mapping ring, std::size_t ring_bytes, bool timestamps,
            bool reads_lost)
      : fd(std::move(event)),
        mapping(std::move(ring)),
        parser(static_cast<perf_event_mmap_page*>(mapping.get()),
               {static_cast<std::byte*>(mapping.get()) + sys::page_size(), ring_bytes}, timestamps),
        reads_lost(reads_lost) {}
  // The records the kernel dropped on this ring so far (PERF_FORMAT_LOST);
  // 0 where the kernel cannot tell.
  std::uint64_t lost() const noexcept {
    std::uint64_t values[2] = {};  // {value, lost}
    if (!reads_lost || ::read(fd.get(), values, sizeof values) != sizeof values) return 0;
    return values[1];
  }
  sys::Fd fd;
  sys::Mapping mapping;
  RingParser parser;
  bool reads_lost;
  std::uint64_t lost_read = 0;  // lost() when last read
};

// Wakeup::adaptive(): the ring that wakes the reader on every record while
// traffic is light: a quarter of the polled ring (of pages_per_cpu), at least
// 64 KiB (or all of a smaller ring). It only has to hold what arrives until
// the reader, woken by the first record of a burst, moves the slot to the
// polled ring; the polled ring holds what arrives between two drains of
// sustained heavy traffic, and a reader that is late to be scheduled.
std::size_t woken_ring_bytes(std::size_t ring_bytes) {
  return std::min(ring_bytes, std::max<std::size_t>(ring_bytes / 4, 64 * 1024));
}

std::unique_ptr<EventRing> open_event_ring(perf_event_attr& attr, int cpu, std::size_t ring_bytes,
                                           bool timestamps) {
  sys::Fd fd;
  try {
    fd = sys::perf_event_open(attr, cpu);
  } catch (const Error& e) {
    if (e.errnum() != EINVAL || attr.read_format == 0) throw;
    attr.read_format = 0;
    fd = sys::perf_event_open(attr, cpu);
  }
  sys::Mapping mapping = sys::map_ring(fd.get(), ring_bytes + sys::page_size(), cpu);
  return std::make_unique<EventRing>(std::move(fd), std::move(mapping), ring_bytes, timestamps,
                                     attr.read_format != 0);
}

// After the map slot is pointed at the other ring, an output that read the
// slot just before may still land in the old ring: the new ring's records
// wait this long after the old ring is empty. (The kernel writes a perf
// record with preemption off, so such a write ends within microseconds,
// unless a virtual machine's CPU is stopped by its host meanwhile: a record
// that lands even later is handed out at once, flagged late.)
constexpr std::chrono::milliseconds kSwitchGrace{1};

// The perf ring(s) of one CPU. With Wakeup::adaptive() there are two: a
// small one that wakes the reader on every record, where the map slot points
// while traffic is light, and one of pages_per_cpu that the reader polls,
// where it points while traffic is heavy (RateSwitch decides). After a switch the old ring is
// read to the end before the new one, so the CPU's records stay in order.
class PerfRing final : public PolledRing {
 public:
  using clock = std::chrono::steady_clock;

  // polled: the ring of pages_per_cpu (under Wakeup::adaptive(), the one
  // that does not wake the reader per record); woken: adaptive's ring that does.
  PerfRing(int cpu, int index, std::unique_ptr<EventRing> polled, std::unique_ptr<EventRing> woken,
           Slot slot, bool wakes_every_record, bool timestamps, const Handlers& handlers,
           std::vector<std::byte>& scratch)
      : PolledRing(cpu, index),
        wakes_every_record_(wakes_every_record),
        rings_{std::move(polled), std::move(woken)},
        active_(rings_[1] ? 1 : 0),
        slot_(slot),
        handlers_(handlers),
        scratch_(scratch),
        timestamps_(timestamps) {
    update_timer();
  }

  // The ring of Options::pages_per_cpu.
  int fd() const noexcept override { return rings_[0]->fd.get(); }
  int second_fd() const noexcept override { return rings_[1] ? rings_[1]->fd.get() : -1; }
  // The event the map slot holds now.
  int slot_fd() const noexcept { return rings_[active_]->fd.get(); }
  bool readable() const noexcept override {
    for (const auto& ring : retired_)
      if (ring->parser.unread() != 0) return true;
    return rings_[0]->parser.readable() != 0 || (rings_[1] && rings_[1]->parser.readable() != 0);
  }
  std::uint64_t fill() const noexcept override {
    std::uint64_t bytes = 0;
    for (const auto& ring : retired_) bytes += ring->parser.readable();
    for (const auto& ring : rings_)
      if (ring) bytes += ring->parser.readable();
    return bytes;
  }

  bool timed() const noexcept override { return timestamps_; }

  std::optional<std::uint64_t> next_time(Pass& pass) override {
    const clock::time_point now = pass.now;
    for (;;) {
      RingParser* parser = reading(now, pass.take_all);
      if (!parser) {
        more = true;  // the new ring's records wait out the grace
        return std::nullopt;
      }
      const std::optional<RingRecord> rec = parser->peek(scratch_);
      if (!rec) {
        if (parser->corrupt()) {
          report_corrupt(pass, parser->corrupt());
          parser->skip_to_head();
        }
        if (parser == &rings_[active_]->parser) return std::nullopt;
        continue;  // the old ring is empty: on to the active one
      }
      if (rec->kind == RingRecord::Kind::sample) {
        next_ = parser;
        next_stray_ = stray_;
        return rec->sample.time_ns;
      }
      parser->advance();  // loss reports are not ordered: they go out at once
      on_lost(rec->lost);
    }
  }

  void take_next(Pass& pass, bool late) override {
    if (!next_) return;
    late = late || next_stray_;
    const std::optional<RingRecord> rec = next_->peek(scratch_);  // what next_time() saw
    if (!rec) return;
    next_->advance();  // before the handler: a record whose handler throws counts as consumed
    ++pass.records;
    ++stats.records;
    stats.bytes += rec->sample.data.size();
    if (late) ++stats.late;
    const Sample sample{cpu(), rec->sample.time_ns, rec->sample.data, late};
    if (handlers_.on_sample(sample) == Action::stop) pass.stopped = true;
  }

  void commit(const Pass& pass) noexcept override {
    for (auto& ring : rings_)
      if (ring) ring->parser.commit();
    adapt(stats.records - records_at_adapt_, pass.now, nullptr);
  }

  void drain(Pass& pass, std::uint64_t budget) override {
    const clock::time_point now = pass.now;
    more = false;
    bool probed = false;
    for (;;) {
      RingParser* parser = reading(now, pass.take_all);
      if (!parser) {
        more = true;  // the new ring's records wait out the grace
        break;
      }
      const bool old = parser != &rings_[active_]->parser;
      // The small woken ring hands out only what makes a burst first, so that
      // adapt() moves the slot to the polled ring before the rest is read:
      // the producer stops filling the small ring while the reader works.
      if (!old && active_ == 1 && !probed && budget > RateSwitch::kBurst) {
        probed = true;
        const std::uint64_t taken = drain(*parser, pass, RateSwitch::kBurst);
        adapt(stats.records - records_at_adapt_, now, &pass);
        budget -= taken;
        if (taken < RateSwitch::kBurst || pass.stopped) break;
        continue;  // switched: the old ring to its end; if not, the rest of the budget
      }
      const std::uint64_t taken = drain(*parser, pass, budget);
      if (!old || more || pass.stopped || taken == budget) break;
      budget -= taken;  // the old ring is empty: the rest of the budget for the new one
    }
    if (pass.take_all)  // consume(): losses no later record would report
      for (int i = 0; i < 2; ++i)
        if (rings_[i]) read_lost(i);
    // (Not again at the same time for nothing, after the burst check alone.)
    if (!probed || stats.records != records_at_adapt_)
      adapt(stats.records - records_at_adapt_, now, &pass);
  }

  void counted_loss(std::uint64_t count) override {
    counted_lost_ += count;
    report_lost();
  }

  // PERF_EVENT_IOC_PAUSE_OUTPUT: the kernel refuses outputs into the rings
  // (and counts them as lost) until resumed.
  void pause_output(bool paused) {
    for (auto& ring : rings_)
      if (ring) sys::perf_event_pause_output(ring->fd.get(), paused);
  }

  // Its CPU went offline, which ended its events for good (the kernel does
  // not turn them on again when the CPU returns): new events take over, the
  // map slot points to them, and what the old rings hold is read first.
  void reopen(std::unique_ptr<EventRing> polled, std::unique_ptr<EventRing> woken) {
    if (old_ >= 0) retired_.push_back(std::move(rings_[old_]));
    old_ = -1;
    for (int i : {active_, 1 - active_})
      if (rings_[i]) retired_.push_back(std::move(rings_[i]));
    rings_[0] = std::move(polled);
    rings_[1] = std::move(woken);
    ++stats.reopens;
    update_timer();
    slot_owners().store_if_owner(slot_, cpu(), rings_[active_]->fd.get());
  }

 private:
  // The ring to read now: the one switched away from until it is empty and no
  // late write can land in it any more, then the active one; nullptr while
  // the old one is empty but a write may still land. take_all (consume())
  // waits that out instead: at most kSwitchGrace.
  RingParser* reading(clock::time_point now, bool take_all) {
    while (!retired_.empty()) {  // rings of events a CPU's going offline ended: no more writes
      RingParser& parser = retired_.front()->parser;
      if (parser.unread() != 0) return &parser;
      dropped_lost_ += retired_.front()->lost();
      retired_.erase(retired_.begin());
      report_lost();
    }
    stray_ = false;
    if (old_ < 0) {
      // A write that landed in the inactive ring after the grace: older than
      // what the active ring gave already.
      const int inactive = 1 - active_;
      if (rings_[inactive] && rings_[inactive]->parser.unread() != 0) {
        stray_ = true;
        return &rings_[inactive]->parser;
      }
      return &rings_[active_]->parser;
    }
    RingParser& old = rings_[old_]->parser;
    if (old.unread() != 0) return &old;
    if (now - switched_at_ < kSwitchGrace) {
      if (!take_all) return nullptr;
      std::this_thread::sleep_until(switched_at_ + kSwitchGrace);
      if (old.unread() != 0) return &old;
    }
    // No record may bring the kernel's report of a loss in the old ring now.
    read_lost(old_);
    old_ = -1;
    update_timer();
    return &rings_[active_]->parser;
  }

  // Takes the kernel's count of the records ring i dropped.
  void read_lost(int i) {
    rings_[i]->lost_read = rings_[i]->lost();
    report_lost();
  }

  // Hands at most `budget` records of one ring to the handler; the number taken.
  std::uint64_t drain(RingParser& parser, Pass& pass, std::uint64_t budget) {
    struct Visitor {
      PerfRing& ring;
      std::uint64_t budget;
      bool out_of_budget = false;
      Action on_sample(const RawSample& raw) {
        ++ring.stats.records;
        ring.stats.bytes += raw.data.size();
        if (ring.stray_) ++ring.stats.late;
        const Action a =
            ring.handlers_.on_sample(Sample{ring.cpu(), raw.time_ns, raw.data, ring.stray_});
        if (a == Action::next && --budget == 0) {
          out_of_budget = true;
          return Action::stop;
        }
        return a;
      }
      void on_lost(std::uint64_t count) { ring.on_lost(count); }
    } visitor{*this, budget};
    const DrainResult r = parser.drain(visitor, scratch_);
    pass.records += r.records;
    pass.stopped = r.stopped && !visitor.out_of_budget;
    more = r.stopped && parser.readable() != 0;  // out of budget, or the handler stopped
    if (r.corrupt) report_corrupt(pass, r.corrupt);
    return r.records;
  }

  // The polled ring of Wakeup::adaptive() is drained on a timer; a ring that
  // wakes the reader on every record needs none, a threshold needs the flush
  // (as does a woken ring while the polled one it left is still read).
  void update_timer() {
    if (rings_[1] && active_ == 0)
      set_timer(RingTimer::poll);
    else if (wakes_every_record_ || (rings_[1] && old_ < 0))
      set_timer(RingTimer::none);
    else
      set_timer(RingTimer::flush);
  }

  // Wakeup::adaptive(): counts what was handed out and moves the map slot to
  // the other ring when the rate crosses a threshold.
  void adapt(std::uint64_t records, clock::time_point now, Pass* pass) {
    records_at_adapt_ = stats.records;
    if (!rings_[1] || old_ >= 0 || !switch_.update(records, now)) return;
    const int next = switch_.polled() ? 0 : 1;
    try {
      if (!slot_owners().store_if_owner(slot_, cpu(), rings_[next]->fd.get())) return;
    } catch (const Error& e) {  // the slot keeps the ring it had: nothing is lost
      if (pass) pass->add_error(e);
      return;
    }
    old_ = active_;
    active_ = next;
    update_timer();
    switched_at_ = clock::now();
    more = true;  // read the old ring to its end now, not at the next wakeup or flush
  }

  void on_lost(std::uint64_t count) {
    kernel_lost_ += count;
    report_lost();
  }
  // Three counts of the same drops, each complete at a different time: the
  // kernel's loss records (only once a later record fits), its count read
  // from the events, and the program's (<perfbuf/bpf.h>). The largest is
  // the most recent.
  void report_lost() {
    std::uint64_t read = dropped_lost_;
    for (const auto& ring : rings_)
      if (ring) read += ring->lost_read;
    for (const auto& ring : retired_) read += ring->lost_read;
    const std::uint64_t grown = std::max({kernel_lost_, counted_lost_, read}) - stats.lost;
    if (grown == 0) return;
    stats.lost += grown;
    if (handlers_.on_lost) handlers_.on_lost(cpu(), grown);
  }
  void report_corrupt(Pass& pass, const char* why) {
    ++stats.corrupt;
    pass.add_error(Error(EBADMSG, "ring of cpu " + std::to_string(cpu()) + ": " + why +
                                      "; skipped the rest of the ring"));
  }

  bool wakes_every_record_;              // Wakeup::every_record()
  std::unique_ptr<EventRing> rings_[2];  // [0] polled, [1] woken (adaptive only)
  int active_;                           // the one the map slot points to
  int old_ = -1;                         // the one switched away from, until drained
  clock::time_point switched_at_;
  RateSwitch switch_;
  std::uint64_t records_at_adapt_ = 0;
  Slot slot_;
  const Handlers& handlers_;
  std::vector<std::byte>& scratch_;
  bool timestamps_;
  RingParser* next_ = nullptr;      // the ring next_time() found the next sample in
  bool next_stray_ = false;
  std::uint64_t kernel_lost_ = 0;   // from the kernel's loss records
  std::uint64_t counted_lost_ = 0;  // from the program's counts (Reader::count_outputs)
  std::vector<std::unique_ptr<EventRing>> retired_;  // read before rings_, oldest first
  bool stray_ = false;  // reading(): the ring returned holds records later than the grace
  std::uint64_t dropped_lost_ = 0;  // PERF_FORMAT_LOST of retired rings read to the end
};

class PerfSource final : public Source {
 public:
  PerfSource(sys::Fd map_fd, const sys::MapInfo& info, Handlers handlers, const Options& options,
             int index)
      : Source(std::move(handlers)),
        map_fd_(std::move(map_fd)),
        map_id_(info.id),
        map_slots_(info.max_entries),
        options_(options),
        index_(index),
        ring_bytes_(options.pages_per_cpu * sys::page_size()),
        attr_(ring_attr(options, ring_bytes_)) {
    scratch_.resize(std::min(ring_bytes_, kMaxRecordBytes + 1));
  }
  ~PerfSource() override {
    // Take our rings out of the map so the program stops writing to them,
    // unless another reader of this process has put its own there since.
    for (const auto& r : rings)
      if (slot_owners().release(map_id_, r->cpu(), this)) sys::map_delete(map_fd_.get(), r->cpu());
    rings.clear();  // before the handlers and scratch buffer they refer to
  }

  void open(const std::vector<int>& cpus) {
    rings.reserve(cpus.size());
    for (int cpu : cpus) open_cpu(cpu);
  }

  CpuChange follow_cpus(const std::vector<int>& online, const std::set<int>& returned) override {
    CpuChange change;
    for (int cpu : online) {
      if (PolledRing* ring = ring_of_cpu(cpu)) {
        if (!returned.count(cpu)) continue;
        auto [polled, woken] = open_events(cpu);
        auto* perf_ring = static_cast<PerfRing*>(ring);
        perf_ring->reopen(std::move(polled), std::move(woken));
        if (paused_) perf_ring->pause_output(true);
        change.reopened.push_back(ring);
      } else if (options_.cpus.empty() && static_cast<std::uint32_t>(cpu) < map_slots_) {
        open_cpu(cpu);  // online for the first time since the reader began
        if (paused_) static_cast<PerfRing&>(*rings.back()).pause_output(true);
        change.added.push_back(rings.back().get());
      }
    }
    return change;
  }

  void pause(bool paused) override {
    for (auto& ring : rings) static_cast<PerfRing&>(*ring).pause_output(paused);
    paused_ = paused;
  }

 private:
  // The events and rings of one CPU: the polled one and (adaptive) the woken one.
  std::pair<std::unique_ptr<EventRing>, std::unique_ptr<EventRing>> open_events(int cpu) {
    auto polled = open_event_ring(attr_, cpu, ring_bytes_, options_.timestamps);
    std::unique_ptr<EventRing> woken;
    if (options_.wakeup.mode == Wakeup::Mode::adaptive) {
      perf_event_attr woken_attr = attr_;
      woken_attr.watermark = 0;
      woken_attr.wakeup_events = 1;
      woken = open_event_ring(woken_attr, cpu, woken_ring_bytes(ring_bytes_), options_.timestamps);
    }
    return {std::move(polled), std::move(woken)};
  }

  void open_cpu(int cpu) {
    auto [polled, woken] = open_events(cpu);
    auto ring = std::make_unique<PerfRing>(
        cpu, index_, std::move(polled), std::move(woken), Slot{map_fd_.get(), map_id_, this},
        options_.wakeup.mode == Wakeup::Mode::every_record, options_.timestamps, handlers, scratch_);
    const int slot_fd = ring->slot_fd();
    // In rings first, so that whatever fails next, the destructor takes the
    // ring out of the map again.
    rings.push_back(std::move(ring));
    slot_owners().claim(map_id_, cpu, this);
    sys::map_set(map_fd_.get(), cpu, slot_fd);
  }

  PolledRing* ring_of_cpu(int cpu) override {
    for (const auto& r : rings)
      if (r->cpu() == cpu) return r.get();
    return nullptr;
  }

  sys::Fd map_fd_;  // our own duplicate, so the map outlives the reader's use of it
  std::uint32_t map_id_;
  std::uint32_t map_slots_;
  Options options_;
  int index_;
  std::size_t ring_bytes_;
  perf_event_attr attr_;  // without PERF_FORMAT_LOST once the kernel refused it
  bool paused_ = false;
  std::vector<std::byte> scratch_;  // wrapped records, shared by the rings of this map
};

}  // namespace

SlotOwners& slot_owners() {
  static SlotOwners owners;
  return owners;
}

std::unique_ptr<Source> open_perf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                         Handlers handlers, const Options& options, int index) {
  const std::vector<int> cpus = options.cpus.empty() ? online_cpus() : options.cpus;
  if (cpus.empty()) throw Error(ENODEV, "no online CPU found in /sys/devices/system/cpu/online");
  sys::check_cpus_fit_map(cpus, info);
  auto source = std::make_unique<PerfSource>(std::move(map_fd), info, std::move(handlers), options,
                                             index);
  source->open(cpus);
  return source;
}

}  // namespace perfbuf::detail
