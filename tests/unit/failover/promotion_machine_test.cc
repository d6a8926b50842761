// The promotion's one transition table and its resume rule (shadowd/failover/promotion_machine.h).
#include "shadowd/failover/promotion_machine.h"

#include <gtest/gtest.h>

namespace vs::failover {
namespace {

namespace v1 = virtshadow::v1;
using O = PromotionOutcome;

TEST(PromotionMachine, TheHappyPathEndsDone) {
  PromotionPhase phase = v1::PROMOTION_PHASE_DECIDED;
  std::vector<PromotionPhase> seen;
  while (!IsTerminal(phase)) {
    auto next = NextPromotionPhase(phase, O::kSucceeded);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    phase = *next;
    seen.push_back(phase);
  }
  EXPECT_EQ(seen, (std::vector<PromotionPhase>{v1::PROMOTION_PHASE_SETTLED, v1::PROMOTION_PHASE_DEFINED,
                                               v1::PROMOTION_PHASE_STARTED, v1::PROMOTION_PHASE_DONE}));
}

TEST(PromotionMachine, RetryStaysInEveryUnfinishedPhase) {
  for (auto phase : {v1::PROMOTION_PHASE_DECIDED, v1::PROMOTION_PHASE_SETTLED, v1::PROMOTION_PHASE_DEFINED,
                     v1::PROMOTION_PHASE_STARTED}) {
    auto next = NextPromotionPhase(phase, O::kRetry);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(*next, phase) << PromotionPhaseName(phase);
  }
}

TEST(PromotionMachine, OnlyPhasesBeforeTheDefinitionMayFail) {
  EXPECT_EQ(*NextPromotionPhase(v1::PROMOTION_PHASE_DECIDED, O::kRefused), v1::PROMOTION_PHASE_FAILED);
  EXPECT_EQ(*NextPromotionPhase(v1::PROMOTION_PHASE_SETTLED, O::kRefused), v1::PROMOTION_PHASE_FAILED);
  // Once the VM is defined and the shadow gone there is no way back.
  EXPECT_EQ(NextPromotionPhase(v1::PROMOTION_PHASE_DEFINED, O::kRefused).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(NextPromotionPhase(v1::PROMOTION_PHASE_STARTED, O::kRefused).status().code(), Code::kInvalidArgument);
}

TEST(PromotionMachine, TerminalPhasesHaveNoTransitions) {
  for (auto phase : {v1::PROMOTION_PHASE_DONE, v1::PROMOTION_PHASE_FAILED, v1::PROMOTION_PHASE_UNSPECIFIED}) {
    for (auto outcome : {O::kSucceeded, O::kRetry, O::kRefused}) {
      EXPECT_FALSE(NextPromotionPhase(phase, outcome).ok()) << PromotionPhaseName(phase);
    }
  }
}

TEST(PromotionMachine, AVmRunningInDefinedWasStartedAndIsNotStartedAgain) {
  EXPECT_EQ(*ResumePromotionPhase(v1::PROMOTION_PHASE_DEFINED, {.defined = true, .running = true}),
            v1::PROMOTION_PHASE_STARTED);
  EXPECT_EQ(*ResumePromotionPhase(v1::PROMOTION_PHASE_DEFINED, {.defined = true, .running = false}),
            v1::PROMOTION_PHASE_DEFINED);
  for (auto phase : {v1::PROMOTION_PHASE_DECIDED, v1::PROMOTION_PHASE_SETTLED, v1::PROMOTION_PHASE_STARTED,
                     v1::PROMOTION_PHASE_DONE, v1::PROMOTION_PHASE_FAILED}) {
    EXPECT_EQ(*ResumePromotionPhase(phase, {.defined = true, .running = true}), phase);
  }
  EXPECT_FALSE(ResumePromotionPhase(v1::PROMOTION_PHASE_UNSPECIFIED, {}).ok());
}

}  // namespace
}  // namespace vs::failover
