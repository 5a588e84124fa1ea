// A BPF_MAP_TYPE_RINGBUF: one ring shared by every CPU, read in place.
#include <perfbuf/ringbuf.h>

#include "adaptive.h"
#include "sources.h"

namespace perfbuf::detail {

namespace {

class RingbufRing final : public PolledRing {
 public:
  RingbufRing(sys::Fd map_fd, sys::RingbufMappings mappings, std::size_t size, Wakeup wakeup,
              const Handlers& handlers, int index)
      : PolledRing(-1, index),
        wakeup_(wakeup),
        watermark_(watermark_bytes(wakeup.mode == Wakeup::Mode::adaptive ? Wakeup::watermark(0)
                                                                          : wakeup,
                                   size)),
        map_fd_(std::move(map_fd)),
        mappings_(std::move(mappings)),
        cursor_(static_cast<std::uint64_t*>(mappings_.consumer.get()),
                static_cast<const std::uint64_t*>(mappings_.producer.get()),
                static_cast<const std::byte*>(mappings_.producer.get()) + sys::page_size(), size),
        handlers_(handlers) {
    update_timer();
  }

  // The map fd itself: the kernel reports it readable when records are waiting.
  int fd() const noexcept override { return map_fd_.get(); }
  bool edge_triggered() const noexcept override { return true; }
  bool readable() const noexcept override { return cursor_.readable() != 0; }
  [[gnu::hot]] std::uint64_t fill() const noexcept override { return cursor_.readable(); }

  // The program's counts map (<perfbuf/bpf.h>): through it the reader tells
  // the program when to wake it. Without one the kernel's rule stays: a
  // wakeup per record while the reader is caught up.
  void control(OutputCounts& counts) {
    counts.set_wakeup_bytes(wakeup_bytes());
    counts_ = &counts;
    update_timer();
  }

  [[gnu::hot]] void drain(Pass& pass, std::uint64_t budget) override {
    note_fill(fill());
    struct Visitor {
      RingbufRing& ring;
      Action on_sample(const RawSample& raw) {
        ++ring.stats.records;
        ring.stats.bytes += raw.data.size();
        return ring.handlers_.on_sample(Sample{-1, 0, raw.data});
      }
    } visitor{*this};
    const DrainResult r = cursor_.drain(visitor, budget);
    pass.records += r.records;
    pass.stopped = r.stopped;
    if (r.corrupt) {
      ++stats.corrupt;
      pass.add_error(Error(EBADMSG, std::string("ring buffer: ") + r.corrupt +
                                        "; skipped the rest of the ring"));
    }
    adapt(r.records, pass);  // first: the mode it leaves decides what follows
    // Under the kernel's rule a record committed while the drain ran (or
    // before the switch to that rule) woke no one, the reader being behind:
    // come back for it rather than wait for a wakeup that will not come.
    more = (r.stopped || r.records == budget || kernel_wakes_per_record()) &&
           cursor_.readable() != 0;
  }

 private:
  // The unread bytes at which the program wakes the reader; 0: the kernel's rule.
  std::uint64_t wakeup_bytes() const {
    switch (wakeup_.mode) {
      case Wakeup::Mode::adaptive:
        return switch_.polled() ? watermark_ : 0;
      case Wakeup::Mode::watermark_bytes:
        return watermark_;
      default:
        return 0;
    }
  }

  // Whether the kernel wakes the reader for a record only when it was caught up.
  bool kernel_wakes_per_record() const { return !counts_ || wakeup_bytes() == 0; }

  // Wakeup::adaptive(): per-record wakeups while traffic is light, the
  // watermark (and a drain every kAdaptivePoll) while it is heavy.
  [[gnu::hot]] void adapt(std::uint64_t records, Pass& pass) {
    if (!counts_ || wakeup_.mode != Wakeup::Mode::adaptive ||
        !switch_.update(records, pass.now))
      return;
    try {
      counts_->set_wakeup_bytes(wakeup_bytes());
    } catch (const Error& e) {  // the program keeps the wakeups it had
      switch_.undo();
      pass.add_error(e);
      return;
    }
    ++stats.switches;
    update_timer();
  }

  // Polled while the switch says so; the kernel's rule wakes the reader per
  // record; a watermark needs the flush.
  void update_timer() {
    if (counts_ && switch_.polled())
      set_timer(RingTimer::poll);
    else if (kernel_wakes_per_record())
      set_timer(RingTimer::none);
    else
      set_timer(RingTimer::flush);
  }

  Wakeup wakeup_;
  std::uint64_t watermark_;
  RateSwitch switch_;
  OutputCounts* counts_ = nullptr;  // the source's, once it has one
  sys::Fd map_fd_;
  sys::RingbufMappings mappings_;
  RingbufCursor cursor_;
  const Handlers& handlers_;
};

class RingbufSource final : public Source {
 public:
  explicit RingbufSource(Handlers handlers) : Source(std::move(handlers)) {}
  ~RingbufSource() override { rings.clear(); }  // before the handlers they refer to

 private:
  RingbufRing& ring() { return static_cast<RingbufRing&>(*rings.front()); }
  PolledRing* ring_of_cpu(int) override { return &ring(); }
  void control(OutputCounts& counts) override { ring().control(counts); }

  // The kernel cannot pause a ring buffer: its program stops, told through the counts map.
  std::optional<std::string> why_not_pausable() const override {
    if (counts_) return std::nullopt;
    return "a ring buffer is paused through its program's counts map (<perfbuf/bpf.h>): call "
           "count_outputs() for it first";
  }
  void pause(bool paused) override { counts_->set_paused(paused); }
};

}  // namespace

std::unique_ptr<Source> open_ringbuf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                            Handlers handlers, const Options& options, int index) {
  const std::uint64_t watermark =
      options.wakeup.mode == Wakeup::Mode::watermark_bytes ? options.wakeup.value : 0;
  if (watermark >= info.max_entries)
    throw Error(EINVAL, "perfbuf::Options: Wakeup::watermark(" + std::to_string(watermark) +
                            ") must be below the size of ring buffer \"" + info.name + "\" (" +
                            std::to_string(info.max_entries) +
                            " bytes), or its program would wake the reader only once it is full");
  auto source = std::make_unique<RingbufSource>(std::move(handlers));
  sys::RingbufMappings mappings = sys::map_ringbuf(map_fd.get(), info.max_entries, info.name);
  source->rings.push_back(std::make_unique<RingbufRing>(
      std::move(map_fd), std::move(mappings), info.max_entries, options.wakeup, source->handlers,
      index));
  return source;
}

}  // namespace perfbuf::detail
