#pragma once
// Configuration from command-line flags and environment variables.
// A key "redis-port" is read from "--redis-port=6380" or else PHYSIO_REDIS_PORT,
// else the declared default. Unknown flags are an error so typos do not pass silently.
#include <map>
#include <string>
#include <vector>

namespace physio {

struct ConfigKey {
  std::string name;
  std::string default_value;
  std::string description;
};

class Config {
 public:
  // Declared keys with defaults; `argv` may be empty (tests build configs by Set()).
  Config(std::vector<ConfigKey> keys, int argc, const char* const* argv);
  explicit Config(std::vector<ConfigKey> keys) : Config(std::move(keys), 0, nullptr) {}

  std::string Get(const std::string& name) const;
  int GetInt(const std::string& name) const;
  void Set(const std::string& name, const std::string& value);
  bool help_requested() const { return help_requested_; }
  std::string Usage(const std::string& program) const;

  static std::string EnvName(const std::string& key);

 private:
  std::vector<ConfigKey> keys_;
  std::map<std::string, std::string> values_;
  bool help_requested_ = false;
};

}  // namespace physio
