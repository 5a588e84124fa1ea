#include "sources.h"

namespace perfbuf::detail {

void Source::count_outputs(sys::Fd counts_fd) {
  OutputCounts counts(std::move(counts_fd));
  counts.set_wakeup_bytes(wakeup_bytes());  // also undoes what an earlier reader set
  counts_ = std::move(counts);
}

void Source::read_counts() {
  if (!counts_) return;
  for (const OutputCounts::Growth& g : counts_->read()) {
    PolledRing* ring = ring_of_cpu(g.cpu);
    CpuStats& stats = ring ? ring->stats : elsewhere;
    stats.attempts += g.attempts;
    stats.failed += g.failed;
    if (g.failed && handlers.on_lost) handlers.on_lost(g.cpu, g.failed);
    if (g.kernel_counted && ring) ring->counted_loss(g.kernel_counted);
  }
}

}  // namespace perfbuf::detail
