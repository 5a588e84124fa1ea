// Sources: the maps a Reader reads, each owning its rings. A PERF_EVENT_ARRAY
// gives one perf ring per CPU, stored in the map at key = CPU id; a RINGBUF is
// one ring shared by every CPU.
#pragma once

#include <memory>
#include <vector>

#include "polled_ring.h"
#include "sys.h"

namespace perfbuf::detail {

class Source {
 public:
  virtual ~Source() = default;
  std::vector<std::unique_ptr<PolledRing>> rings;
};

// `options` resolved and validated; `index`: the source's place in the reader.
std::unique_ptr<Source> open_perf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                         Handlers handlers, const Options& options, int index);
std::unique_ptr<Source> open_ringbuf_source(sys::Fd map_fd, const sys::MapInfo& info,
                                            Handlers handlers, int index);

}  // namespace perfbuf::detail
