#pragma once
// One webhook delivery on the wire, as the Standard Webhooks specification
// (standardwebhooks.com) has it: the headers webhook-id, webhook-timestamp and
// webhook-signature ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per
// secret in force, space-separated), a JSON body, and the checks that keep a
// subscription's URL from reaching inside our network (server-side request forgery):
// every address its host resolves to is checked, the connection goes to the address
// checked (no second lookup), and redirects are not followed.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace physio {

// A new signing secret: "whsec_" and 32 random bytes in base64.
std::string NewWebhookSecret();
// "v1,<base64 HMAC-SHA256(key, id + '.' + timestamp + '.' + body)>"; `secret` is "whsec_<base64 key>".
// Throws std::invalid_argument for a secret that is not of that form.
std::string WebhookSignature(const std::string& secret, const std::string& message_id, std::int64_t unix_seconds,
                             const std::string& body);

// An IPv4 or IPv6 network, e.g. "10.0.0.0/8", "fd00::/8", or one address.
struct IpNetwork {
  std::vector<unsigned char> address;  // 4 or 16 bytes
  int prefix = 0;
};
// Throws std::invalid_argument for text that is not an address or a network.
IpNetwork ParseIpNetwork(const std::string& text);
// Comma-separated networks (the webhook-allowed-networks setting); empty text, none.
std::vector<IpNetwork> ParseIpNetworks(const std::string& text);

struct WebhookDestinationPolicy {
  bool allow_http = false;               // plain http:// URLs (development, tests)
  std::vector<IpNetwork> allowed_networks;  // private, loopback or link-local networks reachable even so
};

// What an address is, when it is not a public unicast address: "loopback", "private",
// "link-local" (cloud metadata services live there), ...; empty for a public address.
// `address`: 4 or 16 bytes (an IPv4-mapped IPv6 address is judged as its IPv4 address).
std::string NonPublicKind(const std::vector<unsigned char>& address);

struct WebhookUrl {
  bool https = true;
  std::string host;  // as written (brackets removed for IPv6)
  int port = 443;
  std::string path;  // with its query, "/" at least
};
// A URL a subscription may name: http(s), a host, no user info, no fragment, at most 2048
// characters. Throws Error(kInvalidArgument) naming `field`.
WebhookUrl ParseWebhookUrl(const std::string& url, const WebhookDestinationPolicy& policy,
                           const std::string& field = "url");
// The host's addresses (getaddrinfo), each checked against the policy: the first one, in
// text form, or an Error(kInvalidArgument, field) saying which address was refused and why
// (or that the host does not resolve).
std::string ResolveWebhookDestination(const WebhookUrl& url, const WebhookDestinationPolicy& policy,
                                      const std::string& field = "url");

struct WebhookRequest {
  std::string url;
  std::string message_id;
  std::vector<std::string> secrets;  // every secret in force (a rotation's overlap: two)
  std::string body;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{10000};  // the whole exchange, however slowly the receiver answers
  std::string ca_file;                              // empty: the system's trust store
  std::string user_agent = "physio-webhooks/1";
};

struct WebhookResult {
  int status = 0;  // the receiver's HTTP status; 0 when it gave none
  std::chrono::milliseconds latency{0};
  std::string error;  // empty when the receiver answered 2xx
  bool delivered() const { return status >= 200 && status < 300; }
};

// One POST. Never throws; a refused destination, a timeout or a non-2xx answer is an error.
// At most 64 KiB of the receiver's answer is read.
WebhookResult SendWebhook(const WebhookRequest& request, const WebhookDestinationPolicy& policy);

}  // namespace physio
