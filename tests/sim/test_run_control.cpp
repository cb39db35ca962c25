#include <gtest/gtest.h>

#include "timed/run_control.h"

namespace shadowsim {
namespace {

TEST(RunControl, WarmupResetsStatisticsThenIntervalsThenLimitStops) {
  StatsRegistry registry;
  uint64_t counter = 0;
  StatsGroup(registry, "x").counter("n", &counter, "u", "d");
  std::vector<std::pair<uint64_t, uint64_t>> snapshots;
  RunControl control({10, 35, 10}, registry,
                     [&](uint64_t refs, uint64_t now) { snapshots.push_back({refs, now}); });
  uint64_t now = 0;
  int steps = 0;
  bool go_on = true;
  while (go_on) {  // as a VCPU does: count the reference's statistics, then report it
    ++counter;
    ++steps;
    now += 3;
    if (control.count_reference()) go_on = control.handle_event(now);
  }
  EXPECT_EQ(steps, 35);                        // the 35th reference stops the run
  EXPECT_TRUE(control.in_roi());
  EXPECT_EQ(control.roi_start_cycles(), 30u);  // reset at the 10th reference
  EXPECT_EQ(control.roi_references(), 25u);
  EXPECT_EQ(counter, 25u);                     // references 11..35: after the reset only
  ASSERT_EQ(snapshots.size(), 2u);
  EXPECT_EQ(snapshots[0].first, 10u);
  EXPECT_EQ(snapshots[1].first, 20u);
  EXPECT_EQ(snapshots[1].second, 90u);
}

TEST(RunControl, NoLimitsNeverStops) {
  StatsRegistry registry;
  RunControl control({}, registry, nullptr);
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(control.count_reference());
  EXPECT_EQ(control.roi_references(), 1000u);
}

}  // namespace
}  // namespace shadowsim

namespace shadowsim {
namespace {

TEST(RunControl, CycleWarmupAndIntervalsActAtSyncPoints) {
  StatsRegistry registry;
  uint64_t counter = 0;
  StatsGroup(registry, "x").counter("n", &counter, "u", "d");
  std::vector<uint64_t> snapshot_times;
  RunControl::Limits limits;
  limits.warmup_cycles = 1000;
  limits.interval_cycles = 500;
  RunControl control(limits, registry, [&](uint64_t, uint64_t now) { snapshot_times.push_back(now); });
  EXPECT_FALSE(control.in_roi());
  for (int i = 0; i < 50; ++i) {
    ++counter;
    ASSERT_FALSE(control.count_reference());  // no reference-based events configured
  }
  control.at_sync(900);
  EXPECT_FALSE(control.in_roi());
  control.at_sync(1200);  // first sync at or after the warm-up time
  EXPECT_TRUE(control.in_roi());
  EXPECT_EQ(control.roi_start_cycles(), 1200u);
  EXPECT_EQ(counter, 0u);
  control.at_sync(1600);
  EXPECT_TRUE(snapshot_times.empty());
  control.at_sync(1700);   // 1200 + 500
  control.at_sync(3000);   // spans two intervals: one snapshot
  control.at_sync(3100);
  EXPECT_EQ(snapshot_times, (std::vector<uint64_t>{1700, 3000}));
}

}  // namespace
}  // namespace shadowsim
