// A BPF_MAP_TYPE_RINGBUF: one ring shared by every CPU, read in place.
#include <perfbuf/ringbuf.h>

#include "sources.h"

namespace perfbuf::detail {

namespace {

class RingbufRing final : public PolledRing {
 public:
  RingbufRing(sys::Fd map_fd, sys::RingbufMappings mappings, std::size_t size,
              const Handlers& handlers, int index)
      : PolledRing(-1, index),
        map_fd_(std::move(map_fd)),
        mappings_(std::move(mappings)),
        cursor_(static_cast<std::uint64_t*>(mappings_.consumer.get()),
                static_cast<const std::uint64_t*>(mappings_.producer.get()),
                static_cast<const std::byte*>(mappings_.producer.get()) + sys::page_size(), size),
        handlers_(handlers) {}

  // The map fd itself: the kernel reports it readable when records are waiting.
  int fd() const noexcept override { return map_fd_.get(); }
  bool edge_triggered() const noexcept override { return true; }
  bool readable() const noexcept override { return cursor_.readable() != 0; }

  void drain(Pass& pass, std::uint64_t budget) override {
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
    more = (r.stopped || r.records == budget) && cursor_.readable() != 0;
    if (r.corrupt) {
      ++stats.corrupt;
      pass.add_error(Error(EBADMSG, std::string("ring buffer: ") + r.corrupt +
                                        "; skipped the rest of the ring"));
    }
  }

 private:
  sys::Fd map_fd_;
  sys::RingbufMappings mappings_;
  RingbufCursor cursor_;
  const Handlers& handlers_;
};

class RingbufSource final : public Source {
 public:
  RingbufSource(Handlers handlers, std::uint64_t wakeup_bytes)
      : Source(std::move(handlers)), wakeup_bytes_(wakeup_bytes) {}
  ~RingbufSource() override { rings.clear(); }  // before the handlers they refer to

 private:
  PolledRing* ring_of_cpu(int) override { return rings.front().get(); }
  std::uint64_t wakeup_bytes() const override { return wakeup_bytes_; }
  std::uint64_t wakeup_bytes_;
};

// When a program using <perfbuf/bpf.h> wakes the reader: after the same
// watermark as a perf ring; for the other modes, the kernel's own rule (a
// wakeup per record while the reader is caught up).
std::uint64_t wakeup_bytes(const Wakeup& wakeup, std::size_t ring_bytes) {
  return wakeup.mode == Wakeup::Mode::watermark_bytes ? watermark_bytes(wakeup, ring_bytes) : 0;
}

}  // namespace

std::unique_ptr<Source> open_ringbuf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                            Handlers handlers, const Options& options, int index) {
  const std::uint64_t wakeup = wakeup_bytes(options.wakeup, info.max_entries);
  if (wakeup >= info.max_entries)
    throw Error(EINVAL, "perfbuf::Options: Wakeup::watermark(" + std::to_string(wakeup) +
                            ") must be below the size of ring buffer \"" + info.name + "\" (" +
                            std::to_string(info.max_entries) +
                            " bytes), or its program would wake the reader only once it is full");
  auto source = std::make_unique<RingbufSource>(std::move(handlers), wakeup);
  sys::RingbufMappings mappings = sys::map_ringbuf(map_fd.get(), info.max_entries, info.name);
  source->rings.push_back(std::make_unique<RingbufRing>(
      std::move(map_fd), std::move(mappings), info.max_entries, source->handlers, index));
  return source;
}

}  // namespace perfbuf::detail
