// Every stored object of the kinds an audit judges, read from the API server a list page at a
// time (the background audit, webhook/server/background_audit.h). Each kind's version is found
// by discovery, so the custom resources are read at whatever version the cluster serves, and a
// kind the cluster does not serve (no KEDA, no KubeRay; batch/v1 CronJobs before 1.21) is
// passed over, not an error.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/audit.h"
#include "gpuadmit/workload.h"
#include "webhook/kube/client.h"

namespace gpuadmit::kube {

struct StoredKind {
  std::string group;   // "" for the core API
  std::string plural;  // the resource: "deployments"
  std::string kind;    // "Deployment"
  std::string key() const { return audit::kind_key(group, kind); }  // as judged_through_owner reads them
};

// What the audit reads: the custom resources `kinds` declares first, then the built-in
// controllers, the autoscalers and Pods last, so that owners come before what they own.
std::vector<StoredKind> audited_kinds(const WorkloadKinds& kinds);

class ListError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ListedKind {
  StoredKind kind;
  std::string api_version;  // where it was read ("batch/v1beta1"); "" when not served
  std::size_t objects = 0;
};

// Reads every object of `kind` and hands each to `visit` with its apiVersion and kind set (list
// items come without them). Pages of `page_size`; a page is dropped once visited. Throws
// ListError naming the kind and what the API server answered; a kind not served returns with
// api_version "".
ListedKind list_stored(KubeClient& client, const StoredKind& kind, std::size_t page_size,
                       std::chrono::milliseconds timeout, const std::function<void(nlohmann::json&&)>& visit);

}  // namespace gpuadmit::kube
