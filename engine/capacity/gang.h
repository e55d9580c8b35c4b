// Can all pods of a gang run at the same time? An LWS group, a RayCluster's head and minimum
// workers, a JobSet or a PyTorchJob with all its replicas start only when every member has a node.
// Packing them is bin packing, so the answer is in three parts: a placement found (first fit of
// each member, the largest first, in bulk), a proof that none exists (for one resource, a set of
// members asks for more than the nodes they may use could give them, even counting each node's
// room as shareable: Hall's condition of the flow relaxation), or neither.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/capacity/cluster_model.h"

namespace gpuadmit::capacity {

struct GangMember {
  Amounts requests;                // one pod's effective requests (pods counts 1)
  std::int64_t count = 0;          // pods of it in the gang
  std::vector<std::size_t> nodes;  // indices into the rooms: where one pod of it could ever run
};

struct GangFit {
  enum class Answer { Fits, Never, Unknown } answer = Answer::Unknown;
  std::int64_t total = 0;   // pods in the gang
  std::int64_t placed = 0;  // pods the first-fit placed (all of them when Fits)
  // When Never: the resource and the members that prove it, what they ask, and what the nodes
  // they may use could give them at most.
  std::string resource;
  std::vector<std::size_t> members;
  std::int64_t demand = 0;
  std::int64_t supply = 0;
};

// `rooms`: what each node offers (allocatable for "ever", free for "now"; `pods` is its pod
// slots). Bounded: at most kMaxGangMembers members are proved with subsets (2^k of them), and a
// first fit visits each member's nodes once.
GangFit fit_gang(const std::vector<Amounts>& rooms, const std::vector<GangMember>& members);
constexpr std::size_t kMaxGangMembers = 8;

}  // namespace gpuadmit::capacity
