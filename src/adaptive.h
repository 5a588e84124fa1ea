// Wakeup::adaptive(): whether a ring should wake its reader on every record
// or be polled, from the rate its records arrive at. Two thresholds apart
// keep a ring near one of them from switching back and forth.
#pragma once

#include <chrono>
#include <cstdint>

namespace perfbuf::detail {

class RateSwitch {
 public:
  using clock = std::chrono::steady_clock;
  // Records/s on one ring. Above kToPolled a wakeup per record costs the
  // producer and the reader more than polling every kAdaptivePoll; below
  // kToWoken polling would make records wait for nothing. Both sit above
  // 10,000/s, where a record must arrive within 100 us, so a ring that a
  // burst moved to polling at that rate comes back to its wakeups.
  static constexpr double kToPolled = 40000;
  static constexpr double kToWoken = 20000;
  static constexpr clock::duration kWindow = std::chrono::milliseconds(4);
  // Records found at one wakeup that mean a burst: the producer outruns the
  // wakeups it pays for, so the switch comes at once rather than at the end
  // of the window.
  static constexpr std::uint64_t kBurst = 32;
  // Records in one window that prove a rate of kToPolled before the window
  // ends: a ring woken per record switches as soon as it holds them (160),
  // rather than after 4 ms of a wakeup per record (at 600,000/s, 2,400 of
  // them) when each wakeup finds fewer than kBurst.
  static constexpr std::uint64_t kToPolledInWindow = static_cast<std::uint64_t>(
      kToPolled * std::chrono::duration<double>(kWindow).count());

  // `start`: where the first window begins.
  explicit RateSwitch(clock::time_point start = clock::now()) : window_start_(start) {}

  bool polled() const noexcept { return polled_; }
  // The switch update() asked for could not be made: the ring keeps its mode,
  // and so does the decision (else the next switch would be one in name only).
  void undo() noexcept { polled_ = !polled_; }
  // Counts `records` handed out at `now`; true when the ring should switch
  // mode (polled() then tells the new one).
  bool update(std::uint64_t records, clock::time_point now) noexcept {
    in_window_ += records;
    const clock::duration elapsed = now - window_start_;
    if (!polled_ &&
        (records >= kBurst || (elapsed < kWindow && in_window_ >= kToPolledInWindow))) {
      polled_ = true;
      window_start_ = now;
      in_window_ = 0;
      return true;
    }
    if (elapsed < kWindow) return false;
    const double rate = in_window_ / std::chrono::duration<double>(elapsed).count();
    window_start_ = now;
    in_window_ = 0;
    const bool want = polled_ ? rate >= kToWoken : rate >= kToPolled;
    if (want == polled_) return false;
    polled_ = want;
    return true;
  }

 private:
  bool polled_ = false;
  clock::time_point window_start_;
  std::uint64_t in_window_ = 0;
};

}  // namespace perfbuf::detail
