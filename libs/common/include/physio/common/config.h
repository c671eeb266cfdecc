#pragma once
// Configuration from command-line flags and environment variables.
// A key "redis-port" is read from "--redis-port=6380" or else PHYSIO_REDIS_PORT,
// else the declared default. Unknown flags are an error so typos do not pass silently.
#include <map>
#include <string>
#include <vector>

namespace physio {

// What a deployment must provide for a key: tools (the compose check, run.sh)
// read this from the binary itself through --list-settings instead of keeping a copy.
enum class SettingKind {
  kPlain,        // has a usable default
  kRequired,     // no usable default: the service refuses to start without it
  kPeerAddress,  // address of another of our services ("<service>-addr")
};

struct ConfigKey {
  std::string name;
  std::string default_value;
  std::string description;
  SettingKind kind = SettingKind::kPlain;
};

class Config {
 public:
  // Declared keys with defaults; `argv` may be empty (tests build configs by Set()).
  Config(std::vector<ConfigKey> keys, int argc, const char* const* argv);
  explicit Config(std::vector<ConfigKey> keys) : Config(std::move(keys), 0, nullptr) {}

  std::string Get(const std::string& name) const;
  int GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  void Set(const std::string& name, const std::string& value);
  bool help_requested() const { return help_requested_; }
  bool list_requested() const { return list_requested_; }
  std::string Usage(const std::string& program) const;
  // One line per key, tab-separated: environment name, kind (plain|required|peer-address), default.
  std::string SettingsList() const;

  static std::string EnvName(const std::string& key);

 private:
  std::vector<ConfigKey> keys_;
  std::map<std::string, std::string> values_;
  bool help_requested_ = false;
  bool list_requested_ = false;
};

}  // namespace physio
