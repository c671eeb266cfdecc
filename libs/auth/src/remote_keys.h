#pragma once
// An OpenID provider's signing keys, fetched from its JWKS URL (found through
// discovery, or configured) and kept fresh by one background thread per issuer:
// - refreshed every `refresh_interval`, and at once when a token names a kid we
//   do not hold (at most one fetch per `min_refresh_interval`); the caller waits
//   for that fetch no longer than its own deadline or the fetch timeout;
// - a provider that cannot be reached leaves the cached keys in use until they
//   are `max_key_age` old; then there are none, and every token is refused;
// - a fetch is bounded in time (`fetch_timeout`, connection to last byte) and
//   size (256 KiB); HTTPS with the system's CA store or `ca_bundle`, plain HTTP
//   only when the issuer allows it on loopback; redirects are not followed.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "physio/auth/issuers.h"
#include "physio/auth/jws.h"
#include "physio/common/clock.h"

namespace physio {

class RemoteKeys {
 public:
  // `on_keys_removed` runs (on the refresh thread, under the keys' lock, before a caller waiting
  // for the fetch is woken) when a fetch drops a kid we held; it must not call back into this.
  RemoteKeys(const IssuerConfig& config, std::function<void()> on_keys_removed);
  ~RemoteKeys();
  RemoteKeys(const RemoteKeys&) = delete;
  RemoteKeys& operator=(const RemoteKeys&) = delete;

  // The key named `kid` ("" when the token names none: the only key there is).
  std::optional<PublicKey> Find(const std::string& kid, Clock::time_point deadline);
  std::size_t fetches() const;

 private:
  using KeyMap = std::map<std::string, PublicKey>;
  void Run();
  // One discovery (when needed) and JWKS fetch; the new keys, or why not.
  std::shared_ptr<const KeyMap> Fetch(std::string* error);
  std::string Get(const std::string& url, std::string* error) const;
  std::optional<PublicKey> Lookup(const KeyMap& keys, const std::string& kid) const;

  IssuerConfig config_;
  std::function<void()> on_keys_removed_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;      // the thread: a refresh is asked for, or stop
  std::condition_variable fetched_;   // callers: a fetch finished
  std::shared_ptr<const KeyMap> keys_ = std::make_shared<KeyMap>();
  Clock::time_point keys_time_{};     // when keys_ were last fetched successfully
  std::string jwks_uri_;              // from config or discovery
  std::uint64_t completed_ = 0;       // fetch attempts finished
  bool refresh_asked_ = false;
  bool stopping_ = false;
  Clock::time_point last_attempt_{};
  std::thread thread_;
};

}  // namespace physio
