// Golden cases for the webhook contract: tests/golden/<case>/request.json in, expected.json out
// (an AdmissionReview response, or {"httpStatus": 400, "error": ...} for an unreviewable body).
// A case may carry its own config.yaml, and a cluster.json snapshot that the capacity and quota
// policies review against (as --cluster does). GPUADMIT_UPDATE_GOLDEN=1 rewrites expected.json.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/capacity/cluster_model.h"
#include "gpuadmit/engine.h"

namespace gpuadmit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kGoldenDir = fs::path(GPUADMIT_SOURCE_DIR) / "tests" / "golden";

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> cases() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kGoldenDir))
    if (entry.is_directory() && fs::exists(entry.path() / "request.json"))
      names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

json answer_as_json(const HttpAnswer& answer) {
  if (answer.status != 200) return {{"httpStatus", answer.status}, {"error", answer.body}};
  return json::parse(answer.body);
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, ResponseMatches) {
  const fs::path dir = kGoldenDir / GetParam();
  auto engine = fs::exists(dir / "config.yaml") ? Engine::from_file((dir / "config.yaml").string())
                                                : Engine::from_default();
  auto cluster = fs::exists(dir / "cluster.json")
                     ? capacity::ClusterModel::load({(dir / "cluster.json").string()}, engine->config().gpu)
                     : nullptr;
  HttpAnswer answer = answer_admission_review(*engine, read(dir / "request.json"), cluster.get());
  json actual = answer_as_json(answer);
  if (answer.outcome) {
    // Human-readable companion, checked too: the decoded patch.
    actual["decodedPatch"] = answer.outcome->response.allowed ? answer.outcome->response.patch : json::array();
  }
  if (std::getenv("GPUADMIT_UPDATE_GOLDEN")) {
    std::ofstream(dir / "expected.json") << actual.dump(2) << "\n";
    GTEST_SKIP() << "rewrote " << (dir / "expected.json");
  }
  ASSERT_TRUE(fs::exists(dir / "expected.json")) << "no expected.json in " << dir;
  json expected = json::parse(read(dir / "expected.json"));
  EXPECT_EQ(expected, actual) << "case " << GetParam() << "\nexpected: " << expected.dump(2)
                              << "\nactual: " << actual.dump(2);
}

INSTANTIATE_TEST_SUITE_P(Cases, Golden, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace gpuadmit
