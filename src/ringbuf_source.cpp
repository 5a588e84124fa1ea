// A BPF_MAP_TYPE_RINGBUF: one ring shared by every CPU, read in place.
#include <perfbuf/ringbuf.h>

#include "sources.h"

namespace perfbuf::detail {

namespace {

class RingbufRing final : public PolledRing {
 public:
  RingbufRing(sys::Fd map_fd, sys::RingbufMappings mappings, std::size_t size, Handlers handlers,
              int index)
      : PolledRing(-1, index),
        map_fd_(std::move(map_fd)),
        mappings_(std::move(mappings)),
        cursor_(static_cast<std::uint64_t*>(mappings_.consumer.get()),
                static_cast<const std::uint64_t*>(mappings_.producer.get()),
                static_cast<const std::byte*>(mappings_.producer.get()) + sys::page_size(), size),
        handlers_(std::move(handlers)) {}

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
  Handlers handlers_;
};

}  // namespace

std::unique_ptr<Source> open_ringbuf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                            Handlers handlers, int index) {
  auto source = std::make_unique<Source>();
  sys::RingbufMappings mappings = sys::map_ringbuf(map_fd.get(), info.max_entries, info.name);
  source->rings.push_back(std::make_unique<RingbufRing>(
      std::move(map_fd), std::move(mappings), info.max_entries, std::move(handlers), index));
  return source;
}

}  // namespace perfbuf::detail
