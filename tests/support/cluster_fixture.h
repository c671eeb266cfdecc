#pragma once
// A test suite sharing one real redis-server, one throwaway PostgreSQL and the
// three services for all its tests (each test uses its own tenant and patient).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <memory>

#include "test_env.h"

namespace physio::testing {

class ClusterFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { StartStoresAndCluster({}); }
  // For a suite whose services need settings of their own (call from its SetUpTestSuite).
  // `prepare` runs once the database exists, before the services start (e.g. to create roles).
  static void StartStoresAndCluster(const ServiceCluster::Customize& customize,
                                    const std::function<void()>& prepare = {}) {
    spdlog::set_level(spdlog::level::warn);
    keys_ = std::make_unique<TestKeys>();
    redis_ = std::make_unique<RedisServer>();
    postgres_ = std::make_unique<PostgresServer>();
    postgres_->CreateDatabase("physio");
    if (prepare) prepare();
    cluster_ = std::make_unique<ServiceCluster>(*keys_, redis_->port(), postgres_->port(), "physio",
                                                std::map<std::string, std::string>{}, customize);
  }
  static void TearDownTestSuite() {
    cluster_.reset();
    postgres_.reset();
    redis_.reset();
    keys_.reset();
  }

  inline static std::unique_ptr<TestKeys> keys_;
  inline static std::unique_ptr<RedisServer> redis_;
  inline static std::unique_ptr<PostgresServer> postgres_;
  inline static std::unique_ptr<ServiceCluster> cluster_;
};

// For a binary whose suites (split by feature over several files) share one set
// of stores and services, started once before the first test and stopped after
// the last: its fixtures derive from SharedClusterFixture, and one of its files
// registers SharedClusterEnvironment with ::testing::AddGlobalTestEnvironment.
class SharedClusterFixture : public ClusterFixture {
 public:
  static void Start() { StartStoresAndCluster({}); }
  static void Stop() { ClusterFixture::TearDownTestSuite(); }

 protected:
  // The environment starts and stops the cluster, not each suite.
  static void SetUpTestSuite() {}
  static void TearDownTestSuite() {}
};

class SharedClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { SharedClusterFixture::Start(); }
  void TearDown() override { SharedClusterFixture::Stop(); }
};

}  // namespace physio::testing
