// The pure pieces of issue 25's controls: which header values may become gRPC
// metadata, token buckets, the per-address refusal guard, peers' addresses.
#include <gtest/gtest.h>

#include "physio/common/token_buckets.h"
#include "physio/server/http_gateway.h"
#include "physio/server/refusal_guard.h"
#include "physio/server/service_config.h"

namespace physio {
namespace {

using std::chrono::milliseconds;

TEST(BidiControlsSetting, RefusesUnpairedByDefaultAcceptsOnRequestAndNamesAnythingElse) {
  const auto keys = CommonConfigKeys("127.0.0.1:0");
  EXPECT_EQ(BidiControlsFrom(Config(keys)), BidiControls::kRefuseUnpaired);
  const char* accept[] = {"prog", "--bidi-controls=accept"};
  EXPECT_EQ(BidiControlsFrom(Config(keys, 2, accept)), BidiControls::kAccept);
  const char* typo[] = {"prog", "--bidi-controls=refuse"};
  try {
    BidiControlsFrom(Config(keys, 2, typo));
    FAIL() << "an unknown value must stop the service from starting";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "bidi-controls must be refuse-unpaired or accept, got 'refuse'");
  }
}

TEST(ForwardedHeaders, OnlyWellFormedPrintableValuesMayBecomeMetadata) {
  EXPECT_FALSE(ForwardedHeaderProblem("X-Request-Id", "rq-1.a:b_c"));
  EXPECT_FALSE(ForwardedHeaderProblem("authorization", "Bearer abc.DEF-ghi_jkl~+/=="));
  EXPECT_FALSE(ForwardedHeaderProblem("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
  for (const std::string& bad : {std::string("a\x01" "b"), std::string("%01"), std::string("a b"), std::string("caf\xc3\xa9"),
                                std::string(129, 'a'), std::string("")}) {
    const auto problem = ForwardedHeaderProblem("X-Request-Id", bad);
    ASSERT_TRUE(problem) << bad;
    EXPECT_EQ(problem->rfind("X-Request-Id:", 0), 0u) << *problem;
  }
  for (const std::string& bad : {std::string("Bearer a\x01" "b"), std::string("Bearer a\x7f"), std::string("Basic abc"),
                                std::string("Bearer "), std::string("Bearer a b"), std::string("Bearer ") + std::string(9000, 'a')}) {
    EXPECT_TRUE(ForwardedHeaderProblem("Authorization", bad)) << bad;
  }
  for (const std::string& bad : {std::string("00-zz-zz-01"),
                                std::string("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
                                std::string("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"),
                                std::string("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0\x01")}) {
    EXPECT_TRUE(ForwardedHeaderProblem("Traceparent", bad)) << bad;
  }
}

TEST(MediaTypes, TypesAndCodingsAreCaseInsensitiveAndJsonIsUtf8) {
  EXPECT_EQ(CaseFoldedToken("Application/JSON ; charset=utf-8"), "application/json");
  EXPECT_EQ(CaseFoldedToken("IDENTITY"), "identity");
  EXPECT_EQ(CaseFoldedToken(""), "");
  for (const std::string_view utf8 : {"application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8",
                                  "application/json; charset=\"utf-8\"", "application/fhir+json; fhirVersion=4.0; charset=utf8",
                                  "application/json;"}) {
    EXPECT_TRUE(DeclaresUtf8OrNoCharset(utf8)) << utf8;
  }
  for (const std::string_view other : {"application/json; charset=utf-16", "application/json; CHARSET=latin1",
                                   "application/json; fhirVersion=4.0; charset=\"us-ascii\"", "application/json; charset="}) {
    EXPECT_FALSE(DeclaresUtf8OrNoCharset(other)) << other;
  }
}

TEST(TokenBuckets, ABucketEmptiesAndRefillsAtItsRate) {
  TokenBuckets buckets(2, 3);  // 2/s, 3 at once
  const auto start = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(buckets.Take("a", start).count(), 0);
  EXPECT_EQ(buckets.Take("a", start), milliseconds(500));
  EXPECT_EQ(buckets.Wait("a", start), milliseconds(500));
  EXPECT_EQ(buckets.Take("b", start).count(), 0) << "another key has its own bucket";
  EXPECT_EQ(buckets.Take("a", start + milliseconds(500)).count(), 0);
  EXPECT_GT(buckets.Take("a", start + milliseconds(500)).count(), 0);
}

TEST(TokenBuckets, KeysAreBounded) {
  TokenBuckets buckets(1, 1, 100);
  const auto now = Clock::now();
  for (int i = 0; i < 1000; ++i) buckets.Take("k" + std::to_string(i), now);
  EXPECT_LE(buckets.keys(), 100u);
}

TEST(RefusalGuard, AnAddressPastItsBudgetIsBlockedAndItsAuditAggregated) {
  RefusalGuard guard({/*per_second=*/1, /*burst=*/3, /*audit_per_second=*/1, /*audit_burst=*/2});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(guard.Blocked("10.0.0.1").count(), 0);
    guard.Failed("10.0.0.1");
  }
  EXPECT_GT(guard.Blocked("10.0.0.1").count(), 0);
  EXPECT_EQ(guard.Blocked("10.0.0.2").count(), 0) << "another address is not blocked";
  long repeats = 0;
  EXPECT_TRUE(guard.ShouldAudit("10.0.0.1", repeats));
  EXPECT_EQ(repeats, 1);
  EXPECT_TRUE(guard.ShouldAudit("10.0.0.1", repeats));
  EXPECT_FALSE(guard.ShouldAudit("10.0.0.1", repeats));
  EXPECT_FALSE(guard.ShouldAudit("10.0.0.1", repeats));
  EXPECT_EQ(guard.unaudited(), 2u);
}

TEST(RefusalGuard, AddressesComeWithoutTheirPort) {
  EXPECT_EQ(AddressOfPeer("ipv4:10.0.0.1:5555"), "10.0.0.1");
  EXPECT_EQ(AddressOfPeer("ipv6:[::1]:5555"), "[::1]");
  EXPECT_EQ(AddressOfPeer("http:127.0.0.1:40000"), "127.0.0.1");
  EXPECT_EQ(AddressOfPeer("ipv6:[::1]"), "[::1]");
}

}  // namespace
}  // namespace physio
