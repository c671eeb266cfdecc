#include "physio/server/webhook_sender.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "physio/common/error.h"
#include "physio/common/text_list.h"

namespace physio {

namespace {
std::string Base64(const unsigned char* bytes, std::size_t length) {
  std::string out(4 * ((length + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes, static_cast<int>(length));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

bool Base64Decode(const std::string& text, std::string* out) {
  if (text.empty() || text.size() % 4 != 0) return false;
  std::string bytes(text.size() / 4 * 3, '\0');
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                      reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (written < 0) return false;
  std::size_t length = static_cast<std::size_t>(written);
  // EVP_DecodeBlock counts the padding as zero bytes.
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) --length;
  bytes.resize(length);
  *out = std::move(bytes);
  return true;
}

constexpr std::string_view kSecretPrefix = "whsec_";
}  // namespace

std::string NewWebhookSecret() {
  unsigned char key[32];
  if (RAND_bytes(key, sizeof key) != 1) throw std::runtime_error("no random bytes for a webhook secret");
  return std::string(kSecretPrefix) + Base64(key, sizeof key);
}

std::string WebhookSignature(const std::string& secret, const std::string& message_id, std::int64_t unix_seconds,
                             const std::string& body) {
  std::string key;
  if (secret.rfind(kSecretPrefix, 0) != 0 || !Base64Decode(secret.substr(kSecretPrefix.size()), &key) || key.empty()) {
    throw std::invalid_argument("a webhook secret is \"whsec_\" and a base64 key");
  }
  const std::string content = message_id + "." + std::to_string(unix_seconds) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(content.data()),
           content.size(), mac, &mac_length) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return "v1," + Base64(mac, mac_length);
}

IpNetwork ParseIpNetwork(const std::string& text) {
  std::string address = text;
  int prefix = -1;
  if (const auto slash = text.find('/'); slash != std::string::npos) {
    address = text.substr(0, slash);
    const std::string bits = text.substr(slash + 1);
    if (bits.empty() || bits.size() > 3 || !std::all_of(bits.begin(), bits.end(), ::isdigit)) {
      throw std::invalid_argument("\"" + text + "\" is not an address or a network (address/prefix)");
    }
    prefix = std::stoi(bits);
  }
  IpNetwork network;
  unsigned char bytes[16];
  if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
    network.address.assign(bytes, bytes + 4);
  } else if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
    network.address.assign(bytes, bytes + 16);
  } else {
    throw std::invalid_argument("\"" + text + "\" is not an address or a network (address/prefix)");
  }
  const int width = static_cast<int>(network.address.size()) * 8;
  if (prefix > width) throw std::invalid_argument("\"" + text + "\": prefix longer than the address");
  network.prefix = prefix < 0 ? width : prefix;
  return network;
}

std::vector<IpNetwork> ParseIpNetworks(const std::string& text) {
  std::vector<IpNetwork> networks;
  for (const auto& item : SplitCommaList(text)) {
    if (!item.empty()) networks.push_back(ParseIpNetwork(item));
  }
  return networks;
}

namespace {
bool InNetwork(const std::vector<unsigned char>& address, const IpNetwork& network) {
  if (address.size() != network.address.size()) return false;
  int bits = network.prefix;
  for (std::size_t i = 0; i < address.size() && bits > 0; ++i, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((address[i] & mask) != (network.address[i] & mask)) return false;
  }
  return true;
}

struct Range {
  const char* network;
  const char* kind;
};
// IANA's special-purpose registries (RFC 6890 and its updates): everything that is not a
// public unicast destination.
constexpr Range kNonPublic[] = {
    {"0.0.0.0/8", "unspecified"},       {"10.0.0.0/8", "private"},          {"100.64.0.0/10", "shared (carrier NAT)"},
    {"127.0.0.0/8", "loopback"},        {"169.254.0.0/16", "link-local"},   {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "IETF protocol"},  {"192.0.2.0/24", "documentation"},  {"192.88.99.0/24", "6to4 relay"},
    {"192.168.0.0/16", "private"},      {"198.18.0.0/15", "benchmarking"},  {"198.51.100.0/24", "documentation"},
    {"203.0.113.0/24", "documentation"}, {"224.0.0.0/4", "multicast"},      {"240.0.0.0/4", "reserved"},
    {"::/128", "unspecified"},          {"::1/128", "loopback"},            {"64:ff9b::/96", "NAT64"},
    {"64:ff9b:1::/48", "NAT64"},        {"100::/64", "discard"},            {"2001::/23", "IETF protocol"},
    {"2001:db8::/32", "documentation"}, {"2002::/16", "6to4"},              {"fc00::/7", "private (unique local)"},
    {"fe80::/10", "link-local"},        {"fec0::/10", "site-local"},        {"ff00::/8", "multicast"},
};

const std::vector<std::pair<IpNetwork, std::string>>& NonPublicNetworks() {
  static const auto* networks = [] {
    auto* list = new std::vector<std::pair<IpNetwork, std::string>>();  // NOLINT: lives for the process
    for (const auto& range : kNonPublic) list->emplace_back(ParseIpNetwork(range.network), range.kind);
    return list;
  }();
  return *networks;
}

std::string AddressText(const std::vector<unsigned char>& address) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(address.size() == 4 ? AF_INET : AF_INET6, address.data(), text, sizeof text);
  return text;
}
}  // namespace

std::string NonPublicKind(const std::vector<unsigned char>& address) {
  // An IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) IPv6 address reaches the IPv4 address.
  if (address.size() == 16) {
    const bool mapped = std::all_of(address.begin(), address.begin() + 10, [](unsigned char b) { return b == 0; }) &&
                        address[10] == 0xff && address[11] == 0xff;
    const bool compatible = std::all_of(address.begin(), address.begin() + 12, [](unsigned char b) { return b == 0; }) &&
                            !(address[12] == 0 && address[13] == 0 && address[14] == 0 && address[15] <= 1);
    if (mapped || compatible) return NonPublicKind(std::vector<unsigned char>(address.begin() + 12, address.end()));
  }
  for (const auto& [network, kind] : NonPublicNetworks()) {
    if (InNetwork(address, network)) return kind;
  }
  return "";
}

WebhookUrl ParseWebhookUrl(const std::string& url, const WebhookDestinationPolicy& policy, const std::string& field) {
  if (url.empty()) ThrowInvalidArgument(field, "is required: the https URL events are delivered to");
  if (url.size() > 2048) ThrowInvalidArgument(field, "longer than 2048 characters");
  for (const unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) ThrowInvalidArgument(field, "contains a space, a control or a non-ASCII character");
  }
  WebhookUrl parsed;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    if (!policy.allow_http) ThrowInvalidArgument(field, "must be an https URL (plain http is not allowed here)");
    parsed.https = false;
    parsed.port = 80;
    rest = url.substr(7);
  } else {
    ThrowInvalidArgument(field, "must be an https URL");
  }
  if (url.find('#') != std::string::npos) ThrowInvalidArgument(field, "must not have a fragment");
  const std::size_t path_start = std::min(rest.find_first_of("/?"), rest.size());
  const std::string authority = rest.substr(0, path_start);
  parsed.path = rest.substr(path_start);
  if (parsed.path.empty() || parsed.path.front() == '?') parsed.path = "/" + parsed.path;
  if (authority.find('@') != std::string::npos) ThrowInvalidArgument(field, "must not carry user information");
  std::string host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) ThrowInvalidArgument(field, "has an unclosed IPv6 address");
    host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') ThrowInvalidArgument(field, "has text after its IPv6 address");
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) ThrowInvalidArgument(field, "has no host");
  if (host.size() > 253) ThrowInvalidArgument(field, "host longer than 253 characters");
  for (const char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':' && c != '_') {
      ThrowInvalidArgument(field, "host has a character a host name cannot have");
    }
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) ThrowInvalidArgument(field, "port is not a number");
    parsed.port = std::stoi(port);
    if (parsed.port < 1 || parsed.port > 65535) ThrowInvalidArgument(field, "port must be 1-65535");
  }
  parsed.host = host;
  return parsed;
}

std::string ResolveWebhookDestination(const WebhookUrl& url, const WebhookDestinationPolicy& policy,
                                      const std::string& field) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(url.host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
    ThrowInvalidArgument(field, "host " + url.host + " does not resolve");
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  std::string first;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    std::vector<unsigned char> address;
    if (entry->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ai_addr);
      const auto* bytes = reinterpret_cast<const unsigned char*>(&in->sin_addr);
      address.assign(bytes, bytes + 4);
    } else if (entry->ai_family == AF_INET6) {
      const auto* in = reinterpret_cast<const sockaddr_in6*>(entry->ai_addr);
      const auto* bytes = reinterpret_cast<const unsigned char*>(&in->sin6_addr);
      address.assign(bytes, bytes + 16);
    } else {
      continue;
    }
    // Every address the name has must be allowed: a resolver answering one public and one
    // internal address must not get the internal one reached on a later connection.
    if (const std::string kind = NonPublicKind(address); !kind.empty()) {
      const bool allowed = std::any_of(policy.allowed_networks.begin(), policy.allowed_networks.end(),
                                       [&](const IpNetwork& network) { return InNetwork(address, network); });
      if (!allowed) {
        ThrowInvalidArgument(field, "host " + url.host + " is not a public address (" + AddressText(address) + ", " +
                                        kind + "): webhooks go to public addresses only, unless webhook-allowed-networks "
                                        "lists it");
      }
    }
    if (first.empty()) first = AddressText(address);
  }
  if (first.empty()) ThrowInvalidArgument(field, "host " + url.host + " has no IPv4 or IPv6 address");
  return first;
}

WebhookResult SendWebhook(const WebhookRequest& request, const WebhookDestinationPolicy& policy) {
  WebhookResult result;
  const auto started = std::chrono::steady_clock::now();
  auto done = [&](WebhookResult& r) -> WebhookResult {
    r.latency = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    return r;
  };
  WebhookUrl url;
  std::string address;
  try {
    url = ParseWebhookUrl(request.url, policy);
    address = ResolveWebhookDestination(url, policy);
  } catch (const Error& error) {
    result.error = std::string("destination refused: ") + error.what();
    return done(result);
  }
  const std::string host_port = (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) + ":" +
                                std::to_string(url.port);
  httplib::Client client((url.https ? "https://" : "http://") + host_port);
  // The connection goes to the address just checked, never to a second lookup's answer;
  // TLS still verifies the certificate against the URL's host name.
  client.set_hostname_addr_map({{url.host, address}});
  client.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(request.connect_timeout));
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(request.total_timeout));
  client.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(request.total_timeout));
  client.set_max_timeout(request.total_timeout);
  client.set_follow_location(false);
  client.set_keep_alive(false);
  if (url.https) {
    client.enable_server_certificate_verification(true);
    client.enable_server_hostname_verification(true);
    if (!request.ca_file.empty()) client.set_ca_cert_path(request.ca_file);
  }
  const auto timestamp =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string signatures;
  for (const auto& secret : request.secrets) {
    if (!signatures.empty()) signatures += ' ';
    signatures += WebhookSignature(secret, request.message_id, timestamp, request.body);
  }
  httplib::Request post;
  // The total timeout counts from here (httplib's default start is the clock's minimum, which
  // overflows the elapsed-time arithmetic: the sanitizers caught it, and the timeout never fired).
  post.start_time_ = std::chrono::steady_clock::now();
  post.method = "POST";
  post.path = url.path;
  post.headers = {{"webhook-id", request.message_id},
                  {"webhook-timestamp", std::to_string(timestamp)},
                  {"webhook-signature", signatures},
                  {"User-Agent", request.user_agent}};
  post.body = request.body;
  post.set_header("Content-Type", "application/json");
  int status = 0;
  std::size_t received = 0;
  constexpr std::size_t kMaxAnswer = 64 * 1024;
  post.response_handler = [&status](const httplib::Response& response) {
    status = response.status;
    return true;
  };
  // The answer's body is not needed: read (and dropped) up to 64 KiB, then the connection is closed.
  post.content_receiver = [&received](const char*, std::size_t length, std::size_t, std::size_t) {
    received += length;
    return received <= kMaxAnswer;
  };
  httplib::Response response;
  httplib::Error error = httplib::Error::Success;
  const bool sent = client.send(post, response, error);
  result.status = status;
  if (result.delivered()) return done(result);  // answered 2xx (a long answer cut short is still a 2xx)
  if (status != 0) {
    result.error = "HTTP " + std::to_string(status);
  } else if (!sent) {
    result.error = httplib::to_string(error);
  } else {
    result.error = "no HTTP status";
  }
  return done(result);
}

}  // namespace physio
