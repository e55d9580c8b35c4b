// One page of a list from the API server (GET /api/v1/pods?limit=500), read in a single pass with
// simdjson's On-Demand parser. Each item comes out exactly as trim_object() (objects.h) makes it
// from a full parse of the item; that function stays the contract, and a test and a fuzz target
// hold this reader to it. Nothing outside the trimmed fields is ever built: the managedFields,
// images and container statuses of 150,000 pods are skipped, not parsed into trees and freed,
// which is most of what a restart's initial sync used to cost.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "webhook/kube/objects.h"

namespace gpuadmit::kube {

struct ListPage {
  std::vector<nlohmann::json> items;  // trimmed, in the list's order
  std::string resource_version;       // metadata.resourceVersion
  std::string continue_token;         // metadata.continue; empty on the last page
};

class ListPageReader {
 public:
  // `version`: the version the kind is listed at, which gives its items their apiVersion
  // (trim_object's parameter of the same name); set_version when a list falls back to another.
  explicit ListPageReader(std::string version = "v1");
  ~ListPageReader();
  // Reads `body` (a list answer) into *page. On anything but a well-formed list (not JSON, over
  // the depth limit of engine/input_limits.h, no items array or metadata object) returns false
  // with why in *error; *page is then incomplete and must not be used. The body gets simdjson's
  // padding appended to its capacity.
  bool read(ObjectKind kind, std::string& body, ListPage& page, std::string& error);

  // The same in two steps, so a caller can ask for the next page (page.continue_token) while this
  // one is trimmed: parse() checks the page and reads its metadata, leaving page.items empty;
  // trim_items() then trims the items parse() found. The body is not needed after parse().
  bool parse(std::string& body, ListPage& page, std::string& error);
  void trim_items(ObjectKind kind, std::vector<nlohmann::json>& items);

  void set_version(std::string version) { version_ = std::move(version); }

 private:
  struct Parser;
  std::unique_ptr<Parser> parser_;
  std::string version_;
};

}  // namespace gpuadmit::kube
