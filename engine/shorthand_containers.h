// KServe writes a predictor's container as `model` (or `pytorch`, `tensorflow`, ...) beside the
// pod spec's `containers`. The policies know only `containers`: before they run, the engine moves
// such containers to the front of `containers`, and afterwards moves them back, with whatever
// the mutations changed, and rewrites the fields the findings name. So every policy reviews them
// and the patch lands at the path the user wrote.
#pragma once

#include <string>
#include <vector>

#include "gpuadmit/workload.h"

namespace gpuadmit {

class ShorthandContainers {
 public:
  // Moves the shorthand containers of `workload` into `containers` of `object` (a working copy).
  ShorthandContainers(const Workload& workload, nlohmann::json& object);
  // Puts them back where they were written. Throws std::logic_error if a mutation removed them.
  void restore(nlohmann::json& object) const;
  // "spec.predictor.containers[0].resources" -> "spec.predictor.model.resources", and
  // "spec.predictor.containers[1]" -> "spec.predictor.containers[0]" when one was moved in.
  std::string field(const std::string& field) const;
  bool empty() const { return moved_.empty(); }

 private:
  struct Moved {
    const PodTarget* pod;
    bool had_containers;          // `containers` was present before
    std::vector<bool> had_name;   // per shorthand container: it had a name
  };
  std::vector<Moved> moved_;
};

}  // namespace gpuadmit
