// A BPF_MAP_TYPE_PERF_EVENT_ARRAY: one PERF_COUNT_SW_BPF_OUTPUT event per CPU,
// its ring mapped and stored in the map at key = CPU id.
#include <linux/bpf.h>
#include <unistd.h>
#include <perfbuf/ring.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <span>
#include <string>

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
    case Wakeup::Mode::adaptive:  // the ring's own event: wakes a reader that polls too rarely
      attr.watermark = 1;
      attr.wakeup_watermark = watermark_bytes(o.wakeup, ring_bytes);
      break;
  }
  return attr;
}

// One CPU's mapped ring and the events that write into it: the event it was
// mapped for and, under Wakeup::adaptive(), a second event whose records go
// to the same ring (PERF_EVENT_IOC_SET_OUTPUT) but wake the reader on every one.
// (The parser first, on a cache line of its own: a wakeup reads nothing else here.)
struct alignas(64) EventRing {
  EventRing(sys::Fd event, sys::Mapping ring, std::size_t ring_bytes, bool timestamps,
            bool reads_lost)
      : parser(static_cast<perf_event_mmap_page*>(ring.get()),
               {static_cast<std::byte*>(ring.get()) + sys::page_size(), ring_bytes}, timestamps),
        fd(std::move(event)),
        mapping(std::move(ring)),
        reads_lost(reads_lost) {}
  // The records the kernel dropped on this ring so far, by either event
  // (PERF_FORMAT_LOST); 0 where the kernel cannot tell.
  std::uint64_t lost() const noexcept {
    std::uint64_t total = 0;
    for (const sys::Fd* event : {&fd, &woken}) {
      std::uint64_t values[2] = {};  // {value, lost}
      if (reads_lost && event->get() >= 0 &&
          ::read(event->get(), values, sizeof values) == sizeof values)
        total += values[1];
    }
    return total;
  }
  RingParser parser;
  sys::Fd fd;     // the event the ring was mapped for
  sys::Fd woken;  // Wakeup::adaptive(): the event that wakes per record, or none
  sys::Mapping mapping;
  bool reads_lost;
  std::uint64_t lost_read = 0;  // lost() when last read
};

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

// After the map slot is pointed from the event that wakes per record back to
// the one that does not, an output that read the slot just before may still
// land through the latter and wake nobody: the loop keeps the max_delay
// flush until a drain this long after the switch. (The kernel writes a perf
// record with preemption off, so such a write ends within microseconds.)
constexpr std::chrono::milliseconds kSwitchGrace{1};

// The perf ring of one CPU. With Wakeup::adaptive() two events write into it:
// the map slot points to the one that wakes the reader on every record while
// traffic is light, and to the one that wakes it only at the watermark (the
// reader polls the ring) while traffic is heavy; RateSwitch decides. One
// ring, so a CPU's records stay in the order they were written whichever
// event wrote them, and a burst has the whole ring to land in.
class PerfRing final : public PolledRing {
 public:
  using clock = std::chrono::steady_clock;

  PerfRing(int cpu, int index, std::unique_ptr<EventRing> ring, Slot slot, bool wakes_every_record,
           bool timestamps, const Handlers& handlers, std::span<std::byte> scratch)
      : PolledRing(cpu, index),
        ring_(std::move(ring)),
        handlers_(handlers),
        scratch_(scratch),
        adaptive_(ring_->woken.get() >= 0),
        woken_active_(adaptive_),
        wakes_every_record_(wakes_every_record),
        slot_(slot),
        timestamps_(timestamps) {
    update_timer();
  }

  // The event the ring was mapped for: its fd reports the wakeups of both.
  int fd() const noexcept override { return ring_->fd.get(); }
  // The event the map slot holds now.
  int slot_fd() const noexcept { return woken_active_ ? ring_->woken.get() : ring_->fd.get(); }
  bool readable() const noexcept override {
    for (const auto& ring : retired_)
      if (ring->parser.unread() != 0) return true;
    return ring_->parser.readable() != 0;
  }
  [[gnu::hot]] std::uint64_t fill() const noexcept override {
    std::uint64_t bytes = ring_->parser.readable();
    for (const auto& ring : retired_) bytes += ring->parser.readable();
    return bytes;
  }

  bool timed() const noexcept override { return timestamps_; }

  std::optional<std::uint64_t> next_time(Pass& pass) override {
    for (;;) {
      RingParser& parser = reading();
      const std::optional<RingRecord> rec = parser.peek(scratch_);
      if (!rec) {
        if (parser.corrupt()) {
          report_corrupt(pass, parser.corrupt());
          parser.skip_to_head();
        }
        if (&parser == &ring_->parser) return std::nullopt;
        continue;  // a retired ring is empty: on to the next
      }
      if (rec->kind == RingRecord::Kind::sample) {
        next_ = &parser;
        return rec->sample.time_ns;
      }
      parser.advance();  // loss reports are not ordered: they go out at once
      on_lost(rec->lost);
    }
  }

  void take_next(Pass& pass, bool late) override {
    if (!next_) return;
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
    ring_->parser.commit();
    for (auto& ring : retired_) ring->parser.commit();
    adapt(stats.records - records_at_adapt_, pass.now, nullptr);
  }

  [[gnu::hot]] void drain(Pass& pass, std::uint64_t budget) override {
    note_fill(fill());
    more = false;
    bool probed = false;
    for (;;) {
      RingParser& parser = reading();
      const bool retired = &parser != &ring_->parser;
      // While the slot holds the event that wakes per record, only what makes
      // a burst is read first, so that adapt() moves the slot to the other
      // event before the rest is: the producer stops paying a wakeup per
      // record while the reader works.
      const bool probe = !retired && woken_active_ && !probed && budget > RateSwitch::kBurst;
      const std::uint64_t taken = drain(parser, pass, probe ? RateSwitch::kBurst : budget);
      if (probe) {
        probed = true;
        adapt(stats.records - records_at_adapt_, pass.now, &pass);
        budget -= taken;
        if (taken < RateSwitch::kBurst || pass.stopped) break;
        continue;  // the rest of the budget
      }
      if (!retired || more || pass.stopped || taken == budget) break;
      budget -= taken;  // a retired ring is empty: the rest of the budget for the next
    }
    if (pass.take_all) read_lost();  // consume(): losses no later record would report
    // (Not again at the same time for nothing, after the burst check alone.)
    if (!probed || stats.records != records_at_adapt_)
      adapt(stats.records - records_at_adapt_, pass.now, &pass);
    if (settling_ && pass.now - switched_at_ >= kSwitchGrace) {
      settling_ = false;  // every write through the other event has landed, and was read
      update_timer();
    }
  }

  void counted_loss(std::uint64_t count) override {
    counted_lost_ += count;
    report_lost();
  }

  // PERF_EVENT_IOC_PAUSE_OUTPUT pauses the ring, whichever event writes to
  // it: the kernel refuses outputs (and counts them as lost) until resumed.
  void pause_output(bool paused) { sys::perf_event_pause_output(ring_->fd.get(), paused); }

  // Its CPU went offline, which ended its events for good (the kernel does
  // not turn them on again when the CPU returns): new events take over, the
  // map slot points to them, and what the old ring holds is read first.
  void reopen(std::unique_ptr<EventRing> ring) {
    retired_.push_back(std::move(ring_));
    ring_ = std::move(ring);
    ++stats.reopens;
    slot_owners().store_if_owner(slot_, cpu(), slot_fd());
  }

 private:
  // The ring to read now: rings of events a CPU's going offline ended, until
  // each is read to its end (no more writes come), then the CPU's ring.
  [[gnu::hot]] RingParser& reading() {
    if (retired_.empty()) [[likely]] return ring_->parser;
    return reading_retired();
  }
  [[gnu::cold]] RingParser& reading_retired() {
    while (!retired_.empty()) {
      RingParser& parser = retired_.front()->parser;
      if (parser.unread() != 0) return parser;
      dropped_lost_ += retired_.front()->lost();
      retired_.erase(retired_.begin());
      report_lost();
    }
    return ring_->parser;
  }

  // Takes the kernel's count of the records the ring dropped.
  void read_lost() {
    ring_->lost_read = ring_->lost();
    report_lost();
  }

  // Hands at most `budget` records of one ring to the handler; the number taken.
  // (Called once, so that it is inlined: one frame less per wakeup.)
  [[gnu::hot]] std::uint64_t drain(RingParser& parser, Pass& pass, std::uint64_t budget) {
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
    const DrainResult r = parser.drain(visitor, scratch_);
    pass.records += r.records;
    pass.stopped = r.stopped && !visitor.out_of_budget;
    more = r.stopped && parser.readable() != 0;  // out of budget, or the handler stopped
    if (r.corrupt) report_corrupt(pass, r.corrupt);
    return r.records;
  }

  // Drained every kAdaptivePoll while the slot holds the event that does not
  // wake per record; every max_delay under a wakeup threshold, or while a
  // write through that event may still land after a switch away from it;
  // never when every record wakes the reader.
  void update_timer() {
    if (adaptive_ && !woken_active_)
      set_timer(RingTimer::poll);
    else if (settling_ || (!wakes_every_record_ && !adaptive_))
      set_timer(RingTimer::flush);
    else
      set_timer(RingTimer::none);
  }

  // Wakeup::adaptive(): counts what was handed out and moves the map slot to
  // the other event when the rate crosses a threshold.
  [[gnu::hot]] void adapt(std::uint64_t records, clock::time_point now, Pass* pass) {
    records_at_adapt_ = stats.records;
    if (!adaptive_ || !switch_.update(records, now)) return;
    switch_event(pass);
  }
  // Moves the map slot to the event RateSwitch asked for.
  [[gnu::cold]] void switch_event(Pass* pass) {
    const bool woken = !switch_.polled();
    try {
      const int fd = woken ? ring_->woken.get() : ring_->fd.get();
      if (!slot_owners().store_if_owner(slot_, cpu(), fd)) {
        switch_.undo();
        return;
      }
    } catch (const Error& e) {  // the slot keeps the event it had: nothing is lost
      switch_.undo();
      if (pass) pass->add_error(e);
      return;
    }
    woken_active_ = woken;
    ++stats.switches;
    settling_ = woken;
    if (woken) switched_at_ = clock::now();
    update_timer();
    // Read what landed while the slot moved now, not at the next wakeup or flush.
    more = true;
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
    std::uint64_t read = dropped_lost_ + ring_->lost_read;
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

  // What a wakeup reads first, side by side (fewer cache lines), then the rest.
  std::unique_ptr<EventRing> ring_;
  std::vector<std::unique_ptr<EventRing>> retired_;  // read before ring_, oldest first
  const Handlers& handlers_;
  std::span<std::byte> scratch_;     // the map's buffer for wrapped records
  const bool adaptive_;              // Wakeup::adaptive(): ring_->woken is open
  bool woken_active_;                // the slot holds ring_->woken
  bool settling_ = false;            // switched to woken_ less than kSwitchGrace before the last drain
  RateSwitch switch_;
  std::uint64_t records_at_adapt_ = 0;
  clock::time_point switched_at_;
  bool wakes_every_record_;          // Wakeup::every_record()
  Slot slot_;
  bool timestamps_;
  RingParser* next_ = nullptr;      // the ring next_time() found the next sample in
  std::uint64_t kernel_lost_ = 0;   // from the kernel's loss records
  std::uint64_t counted_lost_ = 0;  // from the program's counts (Reader::count_outputs)
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
        auto* perf_ring = static_cast<PerfRing*>(ring);
        perf_ring->reopen(open_events(cpu));
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
  // The ring of one CPU and its event, and under Wakeup::adaptive() the
  // event that wakes per record, writing into the same ring.
  std::unique_ptr<EventRing> open_events(int cpu) {
    auto ring = open_event_ring(attr_, cpu, ring_bytes_, options_.timestamps);
    if (options_.wakeup.mode == Wakeup::Mode::adaptive) {
      perf_event_attr woken_attr = attr_;  // (without PERF_FORMAT_LOST if the kernel refused it)
      woken_attr.watermark = 0;
      woken_attr.wakeup_events = 1;
      ring->woken = sys::perf_event_open(woken_attr, cpu);
      sys::perf_event_set_output(ring->woken.get(), ring->fd.get());
    }
    return ring;
  }

  void open_cpu(int cpu) {
    auto ring = std::make_unique<PerfRing>(
        cpu, index_, open_events(cpu), Slot{map_fd_.get(), map_id_, this},
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
