// The pure pieces of webhooks (issue 29): Standard Webhooks signatures, which addresses a
// receiver may have, URLs, and the retry schedule.
#include <gtest/gtest.h>

#include "physio/common/error.h"
#include "physio/server/webhook_sender.h"
#include "webhook_dispatcher.h"

namespace physio {
namespace {

std::vector<unsigned char> Address(const std::string& text) { return ParseIpNetwork(text).address; }

TEST(WebhookSignature, MatchesTheStandardWebhooksReferenceVector) {
  // The specification's own example (standard-webhooks, libraries' test suites); the npm
  // `standardwebhooks` package gives the same (checked when this test was written).
  EXPECT_EQ(WebhookSignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // Another id, time or body: another signature.
  EXPECT_NE(WebhookSignature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331,
                             R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_THROW(WebhookSignature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}"), std::invalid_argument);
  EXPECT_THROW(WebhookSignature("whsec_!!!!", "m", 1, "{}"), std::invalid_argument);
}

TEST(WebhookSignature, NewSecretsAreDistinctAndUsable) {
  const std::string a = NewWebhookSecret(), b = NewWebhookSecret();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("whsec_", 0), 0u);
  EXPECT_EQ(a.size(), 6u + 44u);  // 32 bytes in base64
  EXPECT_EQ(WebhookSignature(a, "msg_1", 1, "{}").rfind("v1,", 0), 0u);
}

TEST(WebhookDestinations, EveryNonPublicRangeIsNamedAndPublicAddressesPass) {
  EXPECT_EQ(NonPublicKind(Address("10.1.2.3")), "private");
  EXPECT_EQ(NonPublicKind(Address("172.31.255.255")), "private");
  EXPECT_EQ(NonPublicKind(Address("192.168.0.1")), "private");
  EXPECT_EQ(NonPublicKind(Address("127.0.0.1")), "loopback");
  EXPECT_EQ(NonPublicKind(Address("169.254.169.254")), "link-local");
  EXPECT_EQ(NonPublicKind(Address("100.100.100.200")), "shared (carrier NAT)");  // Alibaba's metadata service
  EXPECT_EQ(NonPublicKind(Address("0.0.0.0")), "unspecified");
  EXPECT_EQ(NonPublicKind(Address("::1")), "loopback");
  EXPECT_EQ(NonPublicKind(Address("fd00:ec2::254")), "private (unique local)");  // AWS's IPv6 metadata service
  EXPECT_EQ(NonPublicKind(Address("fe80::1")), "link-local");
  EXPECT_EQ(NonPublicKind(Address("::ffff:169.254.169.254")), "link-local");  // IPv4-mapped
  EXPECT_EQ(NonPublicKind(Address("::a9fe:a9fe")), "link-local");            // IPv4-compatible
  EXPECT_EQ(NonPublicKind(Address("64:ff9b::a9fe:a9fe")), "NAT64");
  EXPECT_EQ(NonPublicKind(Address("93.184.216.34")), "");
  EXPECT_EQ(NonPublicKind(Address("172.32.0.1")), "");
  EXPECT_EQ(NonPublicKind(Address("2606:4700::1111")), "");
}

TEST(WebhookDestinations, AllowedNetworksOpenOnlyWhatTheyName) {
  WebhookDestinationPolicy policy;
  policy.allow_http = true;
  const auto literal = [&](const std::string& url) {
    return ResolveWebhookDestination(ParseWebhookUrl(url, policy), policy);
  };
  EXPECT_THROW(literal("http://127.0.0.1:8080/x"), Error);
  policy.allowed_networks = ParseIpNetworks("127.0.0.0/8, fd00::/8");
  EXPECT_EQ(literal("http://127.0.0.1:8080/x"), "127.0.0.1");
  EXPECT_EQ(literal("http://[fd00::5]/x"), "fd00::5");
  EXPECT_THROW(literal("http://10.0.0.1/x"), Error);
  EXPECT_THROW(literal("http://169.254.169.254/x"), Error);
  EXPECT_THROW(ParseIpNetworks("10.0.0.0/33"), std::invalid_argument);
  EXPECT_THROW(ParseIpNetworks("not-a-network"), std::invalid_argument);
}

TEST(WebhookUrls, OnlyHttpsUnlessAllowedAndNothingAmbiguous) {
  WebhookDestinationPolicy policy;
  const auto parsed = ParseWebhookUrl("https://hooks.example.org:8443/in/physio?x=1", policy);
  EXPECT_TRUE(parsed.https);
  EXPECT_EQ(parsed.host, "hooks.example.org");
  EXPECT_EQ(parsed.port, 8443);
  EXPECT_EQ(parsed.path, "/in/physio?x=1");
  EXPECT_EQ(ParseWebhookUrl("https://example.org", policy).path, "/");
  EXPECT_EQ(ParseWebhookUrl("https://[2606:4700::1111]/h", policy).host, "2606:4700::1111");
  for (const std::string bad : {"http://example.org/", "ftp://example.org/", "https://u:p@example.org/",
                                "https://example.org/#f", "https://:443/", "https://example.org:0/",
                                "https://exa\tmple.org/", "https://[::1/", "https://ex%61mple.org/"}) {
    EXPECT_THROW(ParseWebhookUrl(bad, policy), Error) << bad;
  }
  policy.allow_http = true;
  EXPECT_FALSE(ParseWebhookUrl("http://example.org/", policy).https);
}

TEST(WebhookRetries, DoubleFromTheBaseUpToTheCapWithAFifthOfJitter) {
  assessment::WebhookDispatchSettings settings;
  settings.retry_base = std::chrono::milliseconds(5000);
  settings.retry_max = std::chrono::milliseconds(3600000);
  using std::chrono::milliseconds;
  EXPECT_EQ(assessment::WebhookRetryDelay(settings, 1, 0.5), milliseconds(5000));
  EXPECT_EQ(assessment::WebhookRetryDelay(settings, 2, 0.5), milliseconds(10000));
  EXPECT_EQ(assessment::WebhookRetryDelay(settings, 5, 0.5), milliseconds(80000));
  EXPECT_EQ(assessment::WebhookRetryDelay(settings, 40, 0.5), milliseconds(3600000));
  EXPECT_EQ(assessment::WebhookRetryDelay(settings, 1, 0.0), milliseconds(4000));
  EXPECT_EQ(assessment::WebhookRetryDelay(settings, 1, 1.0), milliseconds(6000));
  // The default schedule keeps retrying past a day before giving up (give_up_after is a day).
  milliseconds total{0};
  int attempts = 0;
  while (total < std::chrono::hours(24)) total += assessment::WebhookRetryDelay(settings, ++attempts, 0.0);
  EXPECT_GT(attempts, 20);
}

}  // namespace
}  // namespace physio
