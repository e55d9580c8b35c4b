// `gpu-admit inventory --cluster manifests/examples/cluster.json`: the text output is compared
// with tests/inventory_example.txt (reviewed by hand; GPUADMIT_UPDATE_GOLDEN=1 rewrites it), and
// the -o json output is checked for its structure, its arithmetic and the sample cluster's
// known pools, and against the text.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/command_output.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kExpected = fs::path(GPUADMIT_SOURCE_DIR) / "tests" / "inventory_example.txt";
const std::string kCluster = std::string(GPUADMIT_SOURCE_DIR) + "/manifests/examples/cluster.json";

using gpuadmit::testing::command_output;

std::string inventory(const std::string& format, int& status) {
  return command_output(std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit inventory --cluster " + kCluster + " -o " + format +
                 " 2>/dev/null",
             status);
}

TEST(Inventory, TextMatchesTheReviewedOutput) {
  int status = -1;
  const std::string output = inventory("text", status);
  ASSERT_EQ(status, 0) << output;
  if (std::getenv("GPUADMIT_UPDATE_GOLDEN")) {
    std::ofstream(kExpected) << output;
    GTEST_SKIP() << "rewrote " << kExpected;
  }
  std::ifstream in(kExpected);
  ASSERT_TRUE(in) << "missing " << kExpected << "; run with GPUADMIT_UPDATE_GOLDEN=1";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(output, expected.str());
  // Text is the default format.
  int plain_status = -1;
  EXPECT_EQ(command_output(std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit inventory --cluster " + kCluster + " 2>/dev/null", plain_status),
            output);
}

TEST(Inventory, JsonStructureAndArithmetic) {
  int status = -1;
  const std::string output = inventory("json", status);
  ASSERT_EQ(status, 0) << output;
  const json inv = json::parse(output, nullptr, false);
  ASSERT_TRUE(inv.is_object()) << output;
  EXPECT_EQ(std::set<std::string>({"nodes", "pods", "pools", "namespaces"}),
            [&] {
              std::set<std::string> keys;
              for (const auto& [key, value] : inv.items()) keys.insert(key);
              return keys;
            }());
  ASSERT_TRUE(inv["nodes"].is_number_unsigned());
  ASSERT_TRUE(inv["pods"].is_number_unsigned());
  ASSERT_TRUE(inv["pools"].is_array());
  ASSERT_TRUE(inv["namespaces"].is_array());

  std::int64_t nodes = 0;
  std::set<std::string> names;
  bool cordoned = false, mig_mixed = false, time_sliced = false, cpu_only = false;
  std::string previous;
  for (const json& p : inv["pools"]) {
    SCOPED_TRACE(p.dump());
    for (const char* key : {"name", "product", "sharing", "migStrategy"}) ASSERT_TRUE(p[key].is_string()) << key;
    for (const char* key : {"nodes", "gpuMemoryMiB", "gpusPerNode", "strandedGpus", "replicas"})
      ASSERT_TRUE(p[key].is_number_integer()) << key;
    for (const char* key : {"cordoned", "ready"}) ASSERT_TRUE(p[key].is_boolean()) << key;
    ASSERT_TRUE(p["taints"].is_array());
    ASSERT_TRUE(p["migProfiles"].is_array());
    const std::string name = p["name"];
    EXPECT_TRUE(names.insert(name).second) << "pool names are unique";
    EXPECT_LT(previous, name) << "pools are sorted by name";
    previous = name;
    const std::int64_t members = p["nodes"], per_node = p["gpusPerNode"];
    const std::int64_t total = p["gpus"]["total"], allocated = p["gpus"]["allocated"], free = p["gpus"]["free"];
    EXPECT_GE(members, 1);
    nodes += members;
    EXPECT_EQ(total, members * per_node);  // every member has the pool's GPUs
    EXPECT_EQ(allocated + free, total);
    EXPECT_GE(allocated, 0);
    EXPECT_GE(free, 0);
    EXPECT_GE(p["strandedGpus"].get<std::int64_t>(), 0);
    EXPECT_LE(p["strandedGpus"].get<std::int64_t>(), free);
    const std::int64_t block = p["largestFreeBlock"]["gpus"];
    EXPECT_LE(block, std::min(per_node, free));
    EXPECT_GE(block * members, free) << "the largest block is at least the average";
    EXPECT_FALSE(p["largestFreeBlock"]["node"].get<std::string>().empty());
    for (const json& m : p["migProfiles"]) {
      EXPECT_TRUE(m["profile"].is_string());
      EXPECT_GT(m["count"].get<std::int64_t>(), 0);
    }
    cordoned = cordoned || (p["cordoned"] == true && name.ends_with("(cordoned)"));
    mig_mixed = mig_mixed || (p["migStrategy"] == "mixed" && !p["migProfiles"].empty());
    time_sliced = time_sliced || (p["sharing"] == "time-slicing" && p["replicas"].get<std::int64_t>() > 1);
    cpu_only = cpu_only || (name == "cpu-only" && per_node == 0 && total == 0);
  }
  EXPECT_EQ(nodes, inv["nodes"].get<std::int64_t>()) << "each node is in exactly one pool";
  // What manifests/examples/cluster.json is documented to hold (README, Layout).
  EXPECT_TRUE(cordoned);
  EXPECT_TRUE(mig_mixed);
  EXPECT_TRUE(time_sliced);
  EXPECT_TRUE(cpu_only);
  for (const char* product : {"NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-SXM4-40GB", "NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"})
    EXPECT_TRUE(std::any_of(inv["pools"].begin(), inv["pools"].end(), [&](const json& p) {
      return p["product"].get<std::string>().starts_with(product);
    })) << product;

  std::set<std::string> namespaces;
  for (const json& n : inv["namespaces"]) {
    SCOPED_TRACE(n.dump());
    ASSERT_TRUE(n["namespace"].is_string());
    ASSERT_TRUE(n["byResource"].is_object());
    std::int64_t sum = 0;
    for (const auto& [resource, amount] : n["byResource"].items()) {
      EXPECT_TRUE(resource.starts_with("nvidia.com/")) << resource;
      EXPECT_GT(amount.get<std::int64_t>(), 0);
      sum += amount.get<std::int64_t>();
    }
    EXPECT_EQ(n["gpus"].get<std::int64_t>(), sum);
    EXPECT_GT(sum, 0) << "only namespaces that use GPUs are listed";
    namespaces.insert(n["namespace"].get<std::string>());
  }
  EXPECT_EQ(namespaces, (std::set<std::string>{"ml-serving", "ml-training", "research"}));

  // The text shows the same pools, in the same order, and the same totals.
  const std::string text = inventory("text", status);
  ASSERT_EQ(status, 0);
  EXPECT_TRUE(text.starts_with(std::to_string(inv["nodes"].get<std::int64_t>()) + " nodes in " +
                               std::to_string(inv["pools"].size()) + " pools, " +
                               std::to_string(inv["pods"].get<std::int64_t>()) + " pods"))
      << text;
  std::size_t at = 0;
  for (const json& p : inv["pools"]) {
    at = text.find("\n" + p["name"].get<std::string>() + " ", at);
    ASSERT_NE(at, std::string::npos) << p["name"];
  }
}

TEST(Inventory, UsageErrors) {
  int status = -1;
  command_output(std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit inventory -o json >/dev/null 2>&1", status);
  EXPECT_EQ(WEXITSTATUS(status), 2) << "no --cluster";
  command_output(std::string(GPUADMIT_BINARY_DIR) + "/gpu-admit inventory --cluster " + kCluster + " -o yaml >/dev/null 2>&1", status);
  EXPECT_EQ(WEXITSTATUS(status), 2) << "unknown format";
}

}  // namespace
