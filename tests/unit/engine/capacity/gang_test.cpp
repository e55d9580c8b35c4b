// The gang solver against a brute-force placement of every member: a placement it reports exists,
// and a proof that none exists is never wrong. Random clusters of up to 4 nodes and gangs of up to
// 3 kinds of member, 9 pods in all, small enough to try every assignment.
#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "engine/capacity/gang.h"

namespace gpuadmit::capacity {
namespace {

Amounts room(std::int64_t gpus, std::int64_t cpu_milli, std::int64_t pods) {
  Amounts a;
  a.cpu_milli = cpu_milli;
  a.pods = pods;
  if (gpus > 0) a.extended = {{"nvidia.com/gpu", gpus}};
  return a;
}

GangMember member(std::int64_t gpus, std::int64_t cpu_milli, std::int64_t count, std::vector<std::size_t> nodes) {
  GangMember m{room(gpus, cpu_milli, 1), count, std::move(nodes)};
  return m;
}

bool fits_in(const Amounts& want, const Amounts& have) {
  return want.cpu_milli <= have.cpu_milli && want.pods <= have.pods &&
         want.get("nvidia.com/gpu") <= have.get("nvidia.com/gpu");
}

// Every assignment of every pod to one of its member's nodes, depth first.
bool brute_force(std::vector<Amounts>& left, const std::vector<const GangMember*>& pods, std::size_t next) {
  if (next == pods.size()) return true;
  const GangMember& m = *pods[next];
  for (std::size_t n : m.nodes) {
    if (!fits_in(m.requests, left[n])) continue;
    Amounts before = left[n];
    left[n].cpu_milli -= m.requests.cpu_milli;
    left[n].pods -= 1;
    if (m.requests.get("nvidia.com/gpu") > 0) left[n].extended[0].second -= m.requests.get("nvidia.com/gpu");
    const bool found = brute_force(left, pods, next + 1);
    left[n] = before;
    if (found) return true;
  }
  return false;
}

TEST(Gang, AgreesWithABruteForcePlacementOfEveryMember) {
  std::mt19937 rng(20261206);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int fits = 0, never = 0, unknown_possible = 0, unknown_impossible = 0;
  for (int round = 0; round < 4000; ++round) {
    std::vector<Amounts> rooms;
    const int node_count = pick(1, 4);
    for (int n = 0; n < node_count; ++n) rooms.push_back(room(pick(0, 4) * 2, pick(1, 8) * 1000, pick(1, 4)));
    std::vector<GangMember> members;
    int pods = 0;
    const int kinds = pick(1, 3);
    for (int k = 0; k < kinds && pods < 9; ++k) {
      std::vector<std::size_t> nodes;
      for (int n = 0; n < node_count; ++n)
        if (pick(0, 3) > 0) nodes.push_back(n);
      if (nodes.empty()) nodes.push_back(pick(0, node_count - 1));
      const int count = std::min(pick(1, 4), 9 - pods);
      pods += count;
      members.push_back(member(pick(0, 3) * (pick(0, 1) ? 1 : 2), pick(0, 4) * 500, count, nodes));
    }
    std::vector<const GangMember*> expanded;
    for (const GangMember& m : members)
      for (int c = 0; c < m.count; ++c) expanded.push_back(&m);
    std::vector<Amounts> left = rooms;
    const bool possible = brute_force(left, expanded, 0);
    const GangFit fit = fit_gang(rooms, members);
    EXPECT_EQ(fit.total, pods);
    switch (fit.answer) {
      case GangFit::Answer::Fits:
        ++fits;
        EXPECT_TRUE(possible) << "round " << round << ": a placement was reported that does not exist";
        EXPECT_EQ(fit.placed, pods);
        break;
      case GangFit::Answer::Never:
        ++never;
        EXPECT_FALSE(possible) << "round " << round << ": proved impossible, but " << fit.resource
                               << " has a placement";
        EXPECT_GT(fit.demand, fit.supply);
        break;
      case GangFit::Answer::Unknown:
        ++(possible ? unknown_possible : unknown_impossible);
        EXPECT_LT(fit.placed, pods);
        break;
    }
  }
  // Both answers occur, and few gangs are left undecided.
  EXPECT_GT(fits, 1000);
  EXPECT_GT(never, 500);
  std::cout << fits << " fit, " << never << " proved impossible, " << unknown_possible << " undecided with a placement, "
            << unknown_impossible << " undecided without\n";
  EXPECT_LT(unknown_possible + unknown_impossible, 200)
      << unknown_possible << " undecided with a placement, " << unknown_impossible << " without";
}

TEST(Gang, ProvesTheObviousCases) {
  // 3 pods of 8 GPUs on two 8-GPU nodes: 24 GPUs asked, 16 there.
  std::vector<Amounts> rooms = {room(8, 64000, 110), room(8, 64000, 110)};
  GangFit fit = fit_gang(rooms, {member(8, 1000, 3, {0, 1})});
  EXPECT_EQ(fit.answer, GangFit::Answer::Never);
  EXPECT_EQ(fit.resource, "nvidia.com/gpu");
  EXPECT_EQ(fit.demand, 24);
  EXPECT_EQ(fit.supply, 16);
  // 3 pods of 3 GPUs on two 5-GPU nodes: 9 of 10 GPUs, but one pod per node.
  rooms = {room(5, 64000, 110), room(5, 64000, 110)};
  fit = fit_gang(rooms, {member(3, 1000, 3, {0, 1})});
  EXPECT_EQ(fit.answer, GangFit::Answer::Never);
  EXPECT_EQ(fit.supply, 6);
  // A leader that may use only node 0 and workers that fill it: the leader's node is taken.
  rooms = {room(8, 64000, 110), room(8, 64000, 110)};
  fit = fit_gang(rooms, {member(8, 1000, 2, {0, 1}), member(1, 1000, 1, {0})});
  EXPECT_EQ(fit.answer, GangFit::Answer::Never);
  EXPECT_EQ(fit.members.size(), 2u);
  // Room enough: placed, the member with more GPUs first.
  fit = fit_gang(rooms, {member(1, 1000, 8, {0, 1}), member(8, 1000, 1, {0, 1})});
  EXPECT_EQ(fit.answer, GangFit::Answer::Fits);
  EXPECT_EQ(fit.placed, 9);
}

TEST(Gang, HugeCountsSaturateInsteadOfOverflowing) {
  std::vector<Amounts> rooms(3, room(8, 64000, 110));
  const GangFit fit = fit_gang(rooms, {member(8, 1000, std::numeric_limits<std::int64_t>::max() / 2, {0, 1, 2})});
  EXPECT_EQ(fit.answer, GangFit::Answer::Never);
  EXPECT_EQ(fit.resource, "nvidia.com/gpu");
  EXPECT_EQ(fit.supply, 24);
}

}  // namespace
}  // namespace gpuadmit::capacity
