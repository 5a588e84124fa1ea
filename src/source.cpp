#include "sources.h"

namespace perfbuf::detail {

void Source::count_outputs(sys::Fd counts_fd) {
  OutputCounts counts(std::move(counts_fd));  // throws for a wrong map: nothing changed yet
  counts_.reset();  // an earlier map's control goes back to its defaults first
  counts_.emplace(std::move(counts));  // in place: a ring buffer's pointer to it stays good
  control(*counts_);
}

// Hot: a counted map is read every max_delay, beside the loop's code.
[[gnu::hot]] void Source::read_counts() {
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
