// Seeds that once failed a soak, replayed on every build. Each found a real bug (or a checker
// false alarm) before it was fixed; the comment names it. A seed replays exactly only while the
// simulator draws its random numbers in the same order, so after a change to the simulator's
// fault schedule these become ordinary random runs (still worth running), not proofs.
#include <gtest/gtest.h>

#include "random_run.h"

namespace ballot::sim {
namespace {

struct Regression {
  uint64_t seed;
  int members;
  const char* what;
  consensus::EngineKind engine = consensus::EngineKind::kRaft;
  bool sync_every_hard_state = false;  // Found under the crash model before 18b3ec4.
};

constexpr Regression kRegressions[] = {
    {100243, 1, "a learner far behind could not catch up within the liveness bound"},
    {101493, 3, "a candidate trailing the term of the voter it needed campaigned forever"},
    {108548, 3, "leader completeness checked against a late leader of an older term"},
    {109833, 3, "the same false alarm, 5 terms later"},
    {114826, 5, "a candidate that applied its own removal still won the election"},
    {102356, 7, "the same, with 7 members"},
    {186, 1, "multipaxos: a torn rewrite of accepted slots lost a chosen one (storage rule)",
     consensus::EngineKind::kMultiPaxos},
    {130, 1, "multipaxos: a torn write kept slots of a ballot but lost its promise",
     consensus::EngineKind::kMultiPaxos},
    {10965, 1, "multipaxos: the last voter was behind the removed leader's compaction",
     consensus::EngineKind::kMultiPaxos},
    {279, 3, "multipaxos: a partial promise report (bounded promises) entered the merge",
     consensus::EngineKind::kMultiPaxos},
    {116, 5, "the same, with 5 members", consensus::EngineKind::kMultiPaxos},
    {500515, 5,
     "multipaxos: a candidate asking for one promise part per round trip timed out "
     "before its report was complete, again and again (one slot per message)",
     consensus::EngineKind::kMultiPaxos},
    {707274, 3,
     "multipaxos: a torn append left a log ending in a hole, which its member kept under its "
     "opening no-op when it led; chosen there, the hole was missing from its next promise",
     consensus::EngineKind::kMultiPaxos, /*sync_every_hard_state=*/true},
    {720438, 3, "the same", consensus::EngineKind::kMultiPaxos, /*sync_every_hard_state=*/true},
    {814862, 5,
     "a conflicting append during a write made the whole write be handed out again; a torn "
     "rewrite cut the durable log below the applied index"},
};

TEST(SoakRegressions, SeedsThatOnceFailedPass) {
  InstallThrowingAssertHandler();  // An engine assertion fails the run, not the test binary.
  for (const Regression& r : kRegressions) {
    RunConfig config;
    config.engine = r.engine;
    config.seed = r.seed;
    config.members = r.members;
    config.sync_every_hard_state = r.sync_every_hard_state;
    RunResult result = RunRandom(config);
    EXPECT_TRUE(result.passed) << consensus::EngineKindName(r.engine) << " seed " << r.seed
                               << " members " << r.members << " (" << r.what << "): "
                               << (result.violations.empty() ? "" : result.violations.front());
  }
}

}  // namespace
}  // namespace ballot::sim
