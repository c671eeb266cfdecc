// One set of stores and services for every suite of foundation_test, and the fixture's helpers
// kept out of foundation.h.
#include "cluster_fixture.h"
#include "foundation.h"

namespace {
// gtest owns registered environments and deletes them after the run.
[[maybe_unused]] const ::testing::Environment* const kSharedCluster =
    ::testing::AddGlobalTestEnvironment(new physio::testing::SharedClusterEnvironment);
}  // namespace

namespace physio::testing {
long Foundation::FastPathCount(int metrics_port, const std::string& outcome) {
  const auto value = ScrapeMetric(metrics_port, "physio_fast_reads_total{outcome=\"" + outcome + "\"}");
  return value ? static_cast<long>(*value) : -1L;
}
}  // namespace physio::testing
