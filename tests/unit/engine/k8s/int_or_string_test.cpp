// IntOrString scaling (engine/k8s/int_or_string.h) against intstr's TestGetIntFromIntOrPercent
// (k8s.io/apimachinery pkg/util/intstr/intstr_test.go) and the rounding a Deployment's maxSurge
// (up) and maxUnavailable (down) and a PodDisruptionBudget (up) get.
#include <gtest/gtest.h>

#include <limits>

#include "engine/k8s/int_or_string.h"

namespace gpuadmit::k8s {
namespace {

using nlohmann::json;

struct Case {
  json value;
  std::int64_t total;
  bool round_up;
  std::optional<std::int64_t> expected;
};

void expect_all(const std::vector<Case>& cases) {
  for (const Case& c : cases)
    EXPECT_EQ(scaled_int_or_percent(c.value, c.total, c.round_up), c.expected)
        << c.value.dump() << " of " << c.total << (c.round_up ? " rounded up" : " rounded down");
}

TEST(IntOrString, UpstreamTable) {
  expect_all({
      {123, 0, false, 123},
      {"90%", 100, true, 90},
      {"90%", 95, true, 86},
      {"90%", 95, false, 85},
      {"%", 0, false, std::nullopt},
      {"90#", 0, false, std::nullopt},
      {"#%", 0, false, std::nullopt},
      {"90", 0, false, std::nullopt},    // a string must be a percentage
      {"40%%", 0, false, std::nullopt},  // getIntOrPercentValueSafely's table
      {"a%", 0, false, std::nullopt},
  });
}

TEST(IntOrString, RoundingAsTheControllersUseIt) {
  expect_all({
      {10, 100, true, 10},   {"25%", 4, true, 1},   {"25%", 4, false, 1},  {"25%", 3, true, 1},
      {"25%", 3, false, 0},  {"25%", 1, true, 1},   {"25%", 1, false, 0},  {"0%", 5, true, 0},
      {"100%", 7, false, 7}, {"150%", 2, true, 3},  {"33%", 10, true, 4},  {"33%", 10, false, 3},
      {"50%", -4, true, 0},  // a negative total counts as none
  });
}

// What the API server's validation refuses is refused here too, and nothing overflows.
TEST(IntOrString, RefusedAndSaturated) {
  expect_all({
      {"-5%", 100, true, std::nullopt},   {"+5%", 100, true, std::nullopt},
      {"1.5%", 100, true, std::nullopt},  {" 5%", 100, true, std::nullopt},
      {"9223372036854775808%", 1, true, std::nullopt},  // past int64: strconv.Atoi fails
      {-1, 100, true, std::nullopt},      {json::array(), 100, true, std::nullopt},
      {nullptr, 100, true, std::nullopt}, {1.5, 100, true, std::nullopt},
  });
  const std::int64_t most = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(scaled_percent("99999999999999%", 3, false), 2999999999999);
  EXPECT_EQ(scaled_percent("9223372036854775807%", 2, false), most / 100);
  EXPECT_EQ(scaled_percent("9223372036854775807%", 2, true), most / 100 + 1);
  EXPECT_EQ(scaled_percent("100%", most, false), most / 100);
}

}  // namespace
}  // namespace gpuadmit::k8s
