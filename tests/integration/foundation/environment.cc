// One set of stores and services for every suite of foundation_test, and the fixture's helpers
// that need heavy headers (kept out of foundation.h).
#include <httplib.h>

#include <regex>

#include "cluster_fixture.h"
#include "foundation.h"

namespace {
// gtest owns registered environments and deletes them after the run.
[[maybe_unused]] const ::testing::Environment* const kSharedCluster =
    ::testing::AddGlobalTestEnvironment(new physio::testing::SharedClusterEnvironment);
}  // namespace

namespace physio::testing {
long Foundation::FastPathCount(int metrics_port, const std::string& outcome) {
  httplib::Client client("127.0.0.1", metrics_port);
  auto metrics = client.Get("/metrics");
  if (!metrics || metrics->status != 200) return -1L;
  std::smatch match;
  const std::regex line("physio_fast_reads_total\\{outcome=\"" + outcome + "\"\\} (\\d+)");
  return std::regex_search(metrics->body, match, line) ? std::stol(match[1]) : -1L;
}
}  // namespace physio::testing
