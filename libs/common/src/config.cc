#include "physio/common/config.h"

#include <cmath>

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace physio {

std::string Config::EnvName(const std::string& key) {
  std::string env = "PHYSIO_";
  for (char c : key) env += (c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

Config::Config(std::vector<ConfigKey> keys, int argc, const char* const* argv) : keys_(std::move(keys)) {
  for (const auto& key : keys_) {
    const char* env = std::getenv(EnvName(key.name).c_str());
    values_[key.name] = env != nullptr ? std::string(env) : key.default_value;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      continue;
    }
    if (arg == "--list-settings") {
      list_requested_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument: " + arg);
    auto eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (!values_.contains(name)) throw std::invalid_argument("unknown flag --" + name);
    if (eq == std::string::npos) throw std::invalid_argument("flag --" + name + " needs =value");
    values_[name] = arg.substr(eq + 1);
  }
}

std::string Config::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::invalid_argument("undeclared config key " + name);
  return it->second;
}

int Config::GetInt(const std::string& name) const {
  const std::string value = Get(name);
  try {
    size_t used = 0;
    int parsed = std::stoi(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
    return parsed;
  } catch (const std::exception&) {
    throw std::invalid_argument("config " + name + " must be an integer, got '" + value + "'");
  }
}

double Config::GetDouble(const std::string& name) const {
  const std::string value = Get(name);
  try {
    size_t used = 0;
    const double parsed = std::stod(value, &used);
    if (used != value.size() || !std::isfinite(parsed)) throw std::invalid_argument(value);
    return parsed;
  } catch (const std::exception&) {
    throw std::invalid_argument("config " + name + " must be a number, got '" + value + "'");
  }
}

void Config::Set(const std::string& name, const std::string& value) {
  if (!values_.contains(name)) throw std::invalid_argument("undeclared config key " + name);
  values_[name] = value;
}

std::string Config::Usage(const std::string& program) const {
  std::ostringstream out;
  out << "usage: " << program << " [--key=value ...]\n";
  for (const auto& key : keys_) {
    out << "  --" << key.name << " (env " << EnvName(key.name) << ", default '" << key.default_value
        << "')\n      " << key.description << "\n";
  }
  return out.str();
}

}  // namespace physio

namespace physio {

std::string Config::SettingsList() const {
  std::ostringstream out;
  for (const auto& key : keys_) {
    const char* kind = key.kind == SettingKind::kRequired      ? "required"
                       : key.kind == SettingKind::kPeerAddress ? "peer-address"
                                                               : "plain";
    out << EnvName(key.name) << '\t' << kind << '\t' << key.default_value << '\n';
  }
  return out.str();
}

}  // namespace physio
