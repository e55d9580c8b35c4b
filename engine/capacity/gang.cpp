#include "engine/capacity/gang.h"

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

namespace gpuadmit::capacity {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

std::int64_t add(std::int64_t a, std::int64_t b) { return a > kMax - b ? kMax : a + b; }
std::int64_t mul(std::int64_t a, std::int64_t b) { return a != 0 && b > kMax / a ? kMax : a * b; }

// Every resource any member asks for, by its Kubernetes name ("pods" included: a slot each).
std::vector<std::string> resources_asked(const std::vector<GangMember>& members) {
  std::vector<std::string> names = {"pods"};
  for (const GangMember& member : members) {
    if (member.requests.cpu_milli > 0) names.push_back("cpu");
    if (member.requests.memory > 0) names.push_back("memory");
    if (member.requests.ephemeral_storage > 0) names.push_back("ephemeral-storage");
    for (const auto& [name, amount] : member.requests.extended)
      if (amount > 0) names.push_back(name);
  }
  // GPUs and other extended resources first: the proof a person can act on names those.
  auto rank = [](const std::string& name) {
    return name == "cpu" ? 1 : name == "memory" ? 2 : name == "ephemeral-storage" ? 3 : name == "pods" ? 4 : 0;
  };
  std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    return std::pair(rank(a), a) < std::pair(rank(b), b);
  });
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::int64_t asked(const Amounts& requests, const std::string& resource) {
  return resource == "pods" ? 1 : requests.get(resource);
}

// Pods of `want` that fit in `room` alone, at most `limit`.
std::int64_t copies(const Amounts& room, const Amounts& want, const std::vector<std::string>& resources,
                    std::int64_t limit) {
  std::int64_t n = limit;
  for (const std::string& resource : resources) {
    const std::int64_t need = asked(want, resource);
    if (need > 0) n = std::min(n, std::max<std::int64_t>(0, room.get(resource)) / need);
  }
  return n;
}

void take(Amounts& room, const Amounts& want, std::int64_t n) {
  room.pods -= n;
  room.cpu_milli -= mul(want.cpu_milli, n);
  room.memory -= mul(want.memory, n);
  room.ephemeral_storage -= mul(want.ephemeral_storage, n);
  for (const auto& [name, amount] : want.extended)
    for (auto& [have_name, have] : room.extended)
      if (have_name == name) have -= mul(amount, n);
}

// First fit in bulk: members by their largest asks first (GPUs, then cpu, then memory); each
// takes what it can of every node it may use, the nodes fewer other members may use first.
std::int64_t first_fit(std::vector<Amounts> rooms, const std::vector<GangMember>& members,
                       const std::vector<std::string>& resources) {
  std::vector<std::size_t> order(members.size());
  std::iota(order.begin(), order.end(), 0);
  auto gpus = [](const Amounts& a) {
    std::int64_t sum = 0;
    for (const auto& [name, amount] : a.extended) sum = add(sum, amount);
    return sum;
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Amounts& x = members[a].requests;
    const Amounts& y = members[b].requests;
    return std::tuple(gpus(x), x.cpu_milli, x.memory) > std::tuple(gpus(y), y.cpu_milli, y.memory);
  });
  std::vector<int> wanted_by(rooms.size(), 0);
  for (const GangMember& member : members)
    for (std::size_t n : member.nodes) ++wanted_by[n];
  std::int64_t placed = 0;
  for (std::size_t i : order) {
    const GangMember& member = members[i];
    std::vector<std::size_t> nodes = member.nodes;
    std::stable_sort(nodes.begin(), nodes.end(), [&](std::size_t a, std::size_t b) { return wanted_by[a] < wanted_by[b]; });
    std::int64_t left = member.count;
    for (std::size_t n : nodes) {
      if (left == 0) break;
      const std::int64_t t = copies(rooms[n], member.requests, resources, left);
      take(rooms[n], member.requests, t);
      left -= t;
    }
    placed = add(placed, member.count - left);
  }
  return placed;
}

}  // namespace

GangFit fit_gang(const std::vector<Amounts>& rooms, const std::vector<GangMember>& members) {
  GangFit fit;
  for (const GangMember& member : members) fit.total = add(fit.total, member.count);
  const std::vector<std::string> resources = resources_asked(members);
  fit.placed = first_fit(rooms, members, resources);
  if (fit.placed >= fit.total) {
    fit.answer = GangFit::Answer::Fits;
    return fit;
  }
  if (members.size() > kMaxGangMembers) return fit;  // Unknown: 2^k subsets would be too many

  // Nodes that offer the same room to the same members decide alike: counted once, with a weight.
  struct Group {
    const Amounts* room;
    std::uint32_t members = 0;  // bit i: member i may use it
    std::int64_t weight = 0;
  };
  std::vector<std::uint32_t> mask(rooms.size(), 0);
  for (std::size_t i = 0; i < members.size(); ++i)
    for (std::size_t n : members[i].nodes) mask[n] |= 1u << i;
  std::vector<Group> groups;
  std::map<std::pair<std::uint32_t, std::string>, std::size_t> seen;
  for (std::size_t n = 0; n < rooms.size(); ++n) {
    if (!mask[n]) continue;
    std::string key;
    for (const std::string& resource : resources) key += std::to_string(rooms[n].get(resource)) + ",";
    auto [it, inserted] = seen.try_emplace({mask[n], key}, groups.size());
    if (inserted) groups.push_back({&rooms[n], mask[n], 0});
    ++groups[it->second].weight;
  }
  // Per group and member: what one node gives that member at most, alone.
  std::vector<std::vector<std::int64_t>> most(groups.size(), std::vector<std::int64_t>(members.size(), 0));
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (std::size_t i = 0; i < members.size(); ++i)
      if (groups[g].members >> i & 1u)
        most[g][i] = copies(*groups[g].room, members[i].requests, resources, members[i].count);

  // For each resource and each set S of members: what S asks against what its nodes could give.
  for (const std::string& resource : resources) {
    for (std::uint32_t set = 1; set < (1u << members.size()); ++set) {
      std::int64_t demand = 0;
      for (std::size_t i = 0; i < members.size(); ++i)
        if (set >> i & 1u) demand = add(demand, mul(members[i].count, asked(members[i].requests, resource)));
      if (demand == 0) continue;
      std::int64_t supply = 0;
      for (std::size_t g = 0; g < groups.size() && supply < demand; ++g) {
        if (!(groups[g].members & set)) continue;
        std::int64_t usable = 0;
        for (std::size_t i = 0; i < members.size(); ++i)
          if (set >> i & 1u) usable = add(usable, mul(most[g][i], asked(members[i].requests, resource)));
        const std::int64_t per_node =
            std::min(usable, std::max<std::int64_t>(0, resource == "pods" ? groups[g].room->pods
                                                                          : groups[g].room->get(resource)));
        supply = add(supply, mul(per_node, groups[g].weight));
      }
      if (demand > supply) {
        fit.answer = GangFit::Answer::Never;
        fit.resource = resource;
        fit.demand = demand;
        fit.supply = supply;
        for (std::size_t i = 0; i < members.size(); ++i)
          if (set >> i & 1u) fit.members.push_back(i);
        return fit;
      }
    }
  }
  return fit;
}

}  // namespace gpuadmit::capacity
