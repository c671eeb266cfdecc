#include "remote_keys.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "physio/common/no_blocking.h"

namespace physio {

namespace {
constexpr std::size_t kMaxDocumentBytes = 256 * 1024;

// "https://host:port/path?q" -> ("https://host:port", "/path?q").
bool SplitUrl(const std::string& url, std::string* base, std::string* path) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  const auto slash = url.find('/', scheme + 3);
  *base = url.substr(0, slash);
  *path = slash == std::string::npos ? "/" : url.substr(slash);
  return base->size() > scheme + 3;
}

}  // namespace

RemoteKeys::RemoteKeys(const IssuerConfig& config, std::function<void()> on_keys_removed)
    : config_(config), on_keys_removed_(std::move(on_keys_removed)), jwks_uri_(config.jwks_uri) {
  thread_ = std::thread([this] { Run(); });
}

RemoteKeys::~RemoteKeys() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::size_t RemoteKeys::fetches() const {
  std::lock_guard lock(mutex_);
  return completed_;
}

std::string RemoteKeys::Get(const std::string& url, std::string* error) const {
  std::string base, path;
  if (!SplitUrl(url, &base, &path)) {
    *error = "malformed URL";
    return "";
  }
  if (!IsAllowedKeyUrl(url, config_.allow_http)) {
    *error = "not an https URL (plain HTTP only on loopback, when allowed)";
    return "";
  }
  httplib::Client client(base);
  const auto timeout = config_.fetch_timeout;
  client.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  client.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  // The whole request, however slowly the provider trickles bytes.
  client.set_max_timeout(timeout);
  client.set_follow_location(false);
  if (!config_.ca_bundle.empty()) client.set_ca_cert_path(config_.ca_bundle);
  std::string body;
  bool too_large = false;
  auto response = client.Get(path, httplib::Headers{{"Accept", "application/json"}},
                             [&](const char* data, std::size_t length) {
                               if (body.size() + length > kMaxDocumentBytes) {
                                 too_large = true;
                                 return false;
                               }
                               body.append(data, length);
                               return true;
                             });
  if (too_large) {
    *error = "response larger than " + std::to_string(kMaxDocumentBytes) + " bytes";
    return "";
  }
  if (!response) {
    *error = httplib::to_string(response.error());
    return "";
  }
  if (response->status != 200) {
    *error = "HTTP " + std::to_string(response->status);
    return "";
  }
  return body;
}

std::shared_ptr<const RemoteKeys::KeyMap> RemoteKeys::Fetch(std::string* error) {
  std::string jwks_uri;
  {
    std::lock_guard lock(mutex_);
    jwks_uri = jwks_uri_;
  }
  if (config_.keys == KeySourceKind::kDiscovery) {
    // OpenID Connect Discovery 1.0 section 4: the document's issuer must be the one we trust.
    std::string issuer = config_.issuer;
    if (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    const std::string body = Get(issuer + "/.well-known/openid-configuration", error);
    if (!error->empty()) {
      *error = "discovery: " + *error;
      return nullptr;
    }
    auto document = nlohmann::json::parse(body, nullptr, false);
    if (document.is_discarded() || !document.is_object() || !document.contains("jwks_uri") ||
        !document["jwks_uri"].is_string() || !document.contains("issuer") || document["issuer"] != config_.issuer) {
      *error = "discovery: not a discovery document for this issuer";
      return nullptr;
    }
    jwks_uri = document["jwks_uri"].get<std::string>();
    if (!IsAllowedKeyUrl(jwks_uri, config_.allow_http)) {
      *error = "discovery: the jwks_uri is not https";
      return nullptr;
    }
    std::lock_guard lock(mutex_);
    jwks_uri_ = jwks_uri;
  }
  const std::string body = Get(jwks_uri, error);
  if (!error->empty()) {
    *error = "JWKS: " + *error;
    return nullptr;
  }
  try {
    JwksDocument document = ParseJwks(body, config_.max_keys, kMaxDocumentBytes);
    for (const auto& why : document.skipped) spdlog::info("JWKS of {}: key skipped: {}", config_.issuer, why);
    if (document.keys.empty()) {
      *error = "JWKS: no usable signing key";
      return nullptr;
    }
    return std::make_shared<const KeyMap>(std::move(document.keys));
  } catch (const std::exception& e) {
    *error = std::string("JWKS: ") + e.what();
    return nullptr;
  }
}

void RemoteKeys::Run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    std::string error;
    auto fresh = Fetch(&error);
    lock.lock();
    const auto now = Clock::now();
    last_attempt_ = now;
    ++completed_;
    refresh_asked_ = false;
    bool removed = false;
    if (fresh) {
      for (const auto& [kid, key] : *keys_) removed = removed || !fresh->contains(kid);
      if (fresh->size() != keys_->size() || removed) {
        spdlog::info("JWKS of {}: {} signing key(s)", config_.issuer, fresh->size());
      }
      keys_ = fresh;
      keys_time_ = now;
    } else {
      spdlog::warn("JWKS of {} not refreshed (the cached keys stay in use until {} s old): {}", config_.issuer,
                   config_.max_key_age.count(), error);
    }
    // Tokens verified with a removed key are forgotten before anyone can see the new keys (a
    // waiter woken below, whose caller's next call would otherwise still find them verified).
    // Under the lock: the callback only clears the token cache, which never calls back here.
    if (removed && on_keys_removed_) on_keys_removed_();
    fetched_.notify_all();
    // After a failure, try again sooner than the normal refresh.
    const auto wait = fresh ? config_.refresh_interval
                            : std::max<std::chrono::seconds>(config_.min_refresh_interval, std::chrono::seconds(1));
    wake_.wait_until(lock, now + std::min(wait, config_.refresh_interval), [&] { return stopping_ || refresh_asked_; });
  }
}

std::optional<PublicKey> RemoteKeys::Lookup(const KeyMap& keys, const std::string& kid) const {
  if (kid.empty()) {
    // No kid: only when the provider publishes a single key.
    if (keys.size() == 1) return keys.begin()->second;
    return std::nullopt;
  }
  auto found = keys.find(kid);
  if (found == keys.end()) return std::nullopt;
  return found->second;
}

std::optional<PublicKey> RemoteKeys::Find(const std::string& kid, Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  const auto now = Clock::now();
  if (!keys_->empty() && now - keys_time_ > config_.max_key_age) {
    spdlog::error("JWKS of {}: keys not refreshed for {} s, dropped (tokens are refused until a fetch succeeds)",
                  config_.issuer, config_.max_key_age.count());
    keys_ = std::make_shared<KeyMap>();
    if (on_keys_removed_) on_keys_removed_();  // under the lock, as in Run
  }
  if (auto key = Lookup(*keys_, kid)) return key;
  // Unknown kid: a rotation we have not seen yet? One fetch, rate-limited, waited for within the deadline.
  const bool first_fetch_running = completed_ == 0;
  if (!first_fetch_running && now < last_attempt_ + config_.min_refresh_interval) return std::nullopt;
  ThrowIfBlockingForbidden("a key-set fetch");  // the fetch is waited for on a worker
  const std::uint64_t target = completed_ + 1;
  if (!first_fetch_running) {
    refresh_asked_ = true;
    wake_.notify_one();
  }
  const auto bound = std::min(deadline, now + 2 * config_.fetch_timeout + std::chrono::milliseconds(100));
  fetched_.wait_until(lock, bound, [&] { return completed_ >= target || stopping_; });
  return Lookup(*keys_, kid);
}

}  // namespace physio
