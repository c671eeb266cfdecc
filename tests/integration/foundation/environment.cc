// One set of stores and services for every suite of foundation_test.
#include "cluster_fixture.h"

namespace {
// gtest owns registered environments and deletes them after the run.
[[maybe_unused]] const ::testing::Environment* const kSharedCluster =
    ::testing::AddGlobalTestEnvironment(new physio::testing::SharedClusterEnvironment);
}  // namespace
