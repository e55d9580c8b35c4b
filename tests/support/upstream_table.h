// Loading one of the upstream fact tables in ../shared/fixtures/upstream/ and walking its cases.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gpuadmit::testing {

// The parsed table, read once per file name (e.g. "tolerations.json").
inline const nlohmann::json& upstream_table(const std::string& file) {
  static std::map<std::string, nlohmann::json> tables;
  auto it = tables.find(file);
  if (it != tables.end()) return it->second;
  std::ifstream in(std::string(GPUADMIT_SHARED_DIR) + "/fixtures/upstream/" + file);
  if (!in) throw std::runtime_error("cannot open " + file + " under " GPUADMIT_SHARED_DIR "/fixtures/upstream");
  return tables.emplace(file, nlohmann::json::parse(in)).first->second;
}

// Calls f(case) for every case of `kind`, tracing its id, and returns how many there were.
template <typename F>
int for_each_upstream_case(const nlohmann::json& table, std::string_view kind, F f) {
  int n = 0;
  for (const auto& c : table.at("cases")) {
    if (c.at("kind") != kind) continue;
    SCOPED_TRACE(c.at("id").get<std::string>());
    f(c);
    ++n;
  }
  return n;
}

}  // namespace gpuadmit::testing
