// RateSwitch, the decisions of Wakeup::adaptive(): when a ring moves from a
// wakeup per record to being polled and back, from the records each drain
// handed out and when. Times are made up, relative to the switch's start.
#include <gtest/gtest.h>

#include "adaptive.h"

#include <chrono>

namespace perfbuf::detail {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using clock = RateSwitch::clock;

// Drains of `per_drain` records every `every`, from `now` for `length`:
// the number of drains after which the switch said to change mode, or -1.
int drains_until_switch(RateSwitch& s, clock::time_point& now, std::uint64_t per_drain,
                        clock::duration every, clock::duration length) {
  const clock::time_point end = now + length;
  for (int i = 1; now < end; ++i) {
    now += every;
    if (s.update(per_drain, now)) return i;
  }
  return -1;
}

TEST(RateSwitch, StartsWokenPerRecord) { EXPECT_FALSE(RateSwitch().polled()); }

TEST(RateSwitch, LightTrafficStaysWoken) {
  clock::time_point now = clock::now();
  RateSwitch s(now);
  // 10,000/s: one record every 100 us, for a second.
  EXPECT_EQ(drains_until_switch(s, now, 1, microseconds(100), milliseconds(1000)), -1);
  EXPECT_FALSE(s.polled());
}

TEST(RateSwitch, ABurstAtOneWakeupSwitchesAtOnce) {
  clock::time_point now = clock::now();
  RateSwitch s(now);
  EXPECT_FALSE(s.update(RateSwitch::kBurst - 1, now));
  EXPECT_TRUE(s.update(RateSwitch::kBurst, now + microseconds(10)));
  EXPECT_TRUE(s.polled());
}

// Each wakeup finds a few records only (the reader keeps up), but the rate
// is far above kToPolled: the switch comes once the window holds enough to
// prove it, long before the window ends.
TEST(RateSwitch, AFastRateOfSmallDrainsSwitchesBeforeTheWindowEnds) {
  clock::time_point now = clock::now();
  RateSwitch s(now);
  const clock::time_point start = now;
  // 500,000/s in drains of 2 records every 4 us.
  const int drains = drains_until_switch(s, now, 2, microseconds(4), milliseconds(100));
  ASSERT_GT(drains, 0);
  EXPECT_TRUE(s.polled());
  EXPECT_EQ(static_cast<std::uint64_t>(drains) * 2, RateSwitch::kToPolledInWindow);
  EXPECT_LT(now - start, RateSwitch::kWindow / 4);
}

// Records that trickled in over a long quiet time prove no rate.
TEST(RateSwitch, RecordsSpreadOverMoreThanAWindowDoNotSwitch) {
  clock::time_point now = clock::now();
  RateSwitch s(now);
  // Drains below a burst, just short of what proves the rate in the first window...
  std::uint64_t taken = 0;
  for (int i = 1; taken + (RateSwitch::kBurst - 1) < RateSwitch::kToPolledInWindow; ++i) {
    ASSERT_FALSE(s.update(RateSwitch::kBurst - 1, now + microseconds(100 * i)));
    taken += RateSwitch::kBurst - 1;
  }
  // ...then one more a second later: more than that in all, over a second.
  EXPECT_FALSE(s.update(RateSwitch::kBurst - 1, now + milliseconds(1000)));
  EXPECT_FALSE(s.polled());
}

TEST(RateSwitch, BetweenTheThresholdsTheModeStays) {
  // 30,000/s: below kToPolled, above kToWoken.
  const auto every = microseconds(100);  // 3 records per drain
  clock::time_point now = clock::now();
  RateSwitch woken(now);
  EXPECT_EQ(drains_until_switch(woken, now, 3, every, milliseconds(200)), -1);
  EXPECT_FALSE(woken.polled());

  now = clock::now();
  RateSwitch polled(now);
  ASSERT_TRUE(polled.update(RateSwitch::kBurst, now));
  EXPECT_EQ(drains_until_switch(polled, now, 3, every, milliseconds(200)), -1);
  EXPECT_TRUE(polled.polled());
}

TEST(RateSwitch, APolledRingGoesBackToWakeupsWhenTheRateFallsForAWindow) {
  clock::time_point now = clock::now();
  RateSwitch s(now);
  ASSERT_TRUE(s.update(RateSwitch::kBurst, now));
  // Polled every 500 us, finding 5 records each time: 10,000/s.
  const clock::time_point start = now;
  const int drains = drains_until_switch(s, now, 5, microseconds(500), milliseconds(100));
  ASSERT_GT(drains, 0);
  EXPECT_FALSE(s.polled());
  // Not before the window has passed: one slow drain proves no fall.
  EXPECT_GE(now - start, RateSwitch::kWindow);
  EXPECT_LT(now - start, RateSwitch::kWindow + microseconds(500));
}

TEST(RateSwitch, AQuietRingIsWokenAgainAtItsNextDrain) {
  clock::time_point now = clock::now();
  RateSwitch s(now);
  ASSERT_TRUE(s.update(RateSwitch::kBurst, now));
  EXPECT_TRUE(s.update(0, now + milliseconds(50)));  // a poll that found nothing
  EXPECT_FALSE(s.polled());
}

TEST(RateSwitch, ASwitchThatCouldNotBeMadeIsUndone) {
  clock::time_point now = clock::now();
  RateSwitch s(now);
  ASSERT_TRUE(s.update(RateSwitch::kBurst, now));
  s.undo();  // the slot could not be moved: the ring is still woken per record
  EXPECT_FALSE(s.polled());
  // Light traffic asks for nothing: the ring already has the mode it wants.
  EXPECT_EQ(drains_until_switch(s, now, 1, milliseconds(1), milliseconds(100)), -1);
  // The next burst asks for the switch again.
  EXPECT_TRUE(s.update(RateSwitch::kBurst, now));
  EXPECT_TRUE(s.polled());
}

}  // namespace
}  // namespace perfbuf::detail
