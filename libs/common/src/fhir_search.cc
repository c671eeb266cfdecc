#include "physio/common/fhir_search.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "physio/common/error.h"
#include "physio/common/ids.h"

namespace physio {

namespace {

using nlohmann::json;

[[noreturn]] void Refuse(const std::string& parameter, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, parameter + ": " + why);
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool Digits(const std::string& text, std::size_t at, std::size_t count, int* value) {
  if (at + count > text.size()) return false;
  int result = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
    result = result * 10 + (text[i] - '0');
  }
  *value = result;
  return true;
}

constexpr std::int64_t kMicrosPerSecond = 1000000;
constexpr std::int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

bool IsLeap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }
int DaysInMonth(int year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeap(year) ? 29 : kDays[month - 1];
}

// Pairs (system, code) of a token-valued element: a code string, a Coding, a CodeableConcept,
// an Identifier, or an array of those.
void TokensOf(const json& node, std::vector<std::pair<std::string, std::string>>& out) {
  if (node.is_string()) {
    out.emplace_back("", node.get<std::string>());
  } else if (node.is_array()) {
    for (const auto& element : node) TokensOf(element, out);
  } else if (node.is_object()) {
    if (node.contains("coding")) TokensOf(node["coding"], out);
    const std::string system = node.value("system", "");
    if (node.contains("code") && node["code"].is_string()) out.emplace_back(system, node["code"].get<std::string>());
    if (node.contains("value") && node["value"].is_string()) out.emplace_back(system, node["value"].get<std::string>());
  }
}

std::optional<FhirTimeRange> RangeOf(const json& node) {
  if (node.is_string()) return ParseFhirDate(node.get<std::string>());
  if (node.is_object() && (node.contains("start") || node.contains("end"))) {
    FhirTimeRange range{INT64_MIN, INT64_MAX};
    if (node.contains("start") && node["start"].is_string()) {
      auto start = ParseFhirDate(node["start"].get<std::string>());
      if (!start) return std::nullopt;
      range.begin = start->begin;
    }
    if (node.contains("end") && node["end"].is_string()) {
      auto end = ParseFhirDate(node["end"].get<std::string>());
      if (!end) return std::nullopt;
      range.end = end->end;
    }
    return range;
  }
  return std::nullopt;
}

// Where each search parameter reads the resource: element names, tried in turn.
enum class Kind { kToken, kDate, kUri, kId };
struct ParameterDef {
  Kind kind;
  std::vector<std::string> elements;  // "meta.lastUpdated": dotted path
  const char* documentation;
};

using ParameterTable = std::map<std::string, std::map<std::string, ParameterDef>>;

ParameterTable BuildTable() {
  ParameterTable table;
  {
    ParameterTable* t = &table;
    const std::map<std::string, ParameterDef> common = {
        {"_id", {Kind::kId, {"id"}, "the resource id"}},
        {"_lastUpdated", {Kind::kDate, {"meta.lastUpdated"}, "when the record behind it last changed"}},
    };
    auto with = [&](std::map<std::string, ParameterDef> own) {
      own.insert(common.begin(), common.end());
      return own;
    };
    (*t)["Observation"] = with({
        {"code", {Kind::kToken, {"code"}, "the observation's code (LOINC or ours), system|code or code"}},
        {"category", {Kind::kToken, {"category"}, "survey, exam or vital-signs"}},
        {"date", {Kind::kDate, {"effectiveDateTime"}, "when it was observed"}},
        {"status", {Kind::kToken, {"status"}, "final"}},
        {"identifier", {Kind::kToken, {"identifier"}, "system|value"}},
    });
    (*t)["QuestionnaireResponse"] = with({
        {"authored", {Kind::kDate, {"authored"}, "when it was answered"}},
        {"status", {Kind::kToken, {"status"}, "completed"}},
        {"questionnaire", {Kind::kUri, {"questionnaire"}, "the questionnaire's canonical URL"}},
        {"identifier", {Kind::kToken, {"identifier"}, "system|value"}},
    });
    (*t)["CarePlan"] = with({
        {"status", {Kind::kToken, {"status"}, "draft, active, revoked or completed"}},
        {"intent", {Kind::kToken, {"intent"}, "plan"}},
        {"category", {Kind::kToken, {"category"}, "SNOMED CT 279039007 (low back pain)"}},
        {"identifier", {Kind::kToken, {"identifier"}, "system|value (the plan id)"}},
        {"date", {Kind::kDate, {"created"}, "when the plan was created"}},
    });
    (*t)["Goal"] = with({
        {"lifecycle-status", {Kind::kToken, {"lifecycleStatus"}, "proposed, active, completed or cancelled"}},
    });
    (*t)["Encounter"] = with({
        {"date", {Kind::kDate, {"period"}, "the visit's time"}},
        {"status", {Kind::kToken, {"status"}, "finished"}},
        {"class", {Kind::kToken, {"class"}, "AMB or VR (v3 ActCode)"}},
        {"identifier", {Kind::kToken, {"identifier"}, "system|value (the visit id)"}},
    });
    (*t)["Flag"] = with({
        {"date", {Kind::kDate, {"period"}, "when the alert was raised (to when it was acknowledged)"}},
        {"identifier", {Kind::kToken, {"identifier"}, "system|value (the alert id)"}},
    });
    (*t)["Consent"] = with({
        {"status", {Kind::kToken, {"status"}, "active (granted) or inactive (withdrawn)"}},
        {"date", {Kind::kDate, {"dateTime"}, "when it was recorded"}},
        {"category", {Kind::kToken, {"category"}, "the kind of consent"}},
    });
    (*t)["AuditEvent"] = with({
        {"date", {Kind::kDate, {"recorded"}, "when the access happened"}},
    });
  }
  return table;
}

const ParameterTable& Table() {
  static const ParameterTable table = BuildTable();
  return table;
}

const json* At(const json& resource, const std::string& path) {
  const json* node = &resource;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto dot = path.find('.', start);
    const std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || !node->contains(name)) return nullptr;
    node = &(*node)[name];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node;
}

std::vector<std::string> SplitValues(const std::string& value) {
  // Commas separate alternatives; "\," is a literal comma.
  std::vector<std::string> values;
  std::string current;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size() && value[i + 1] == ',') {
      current += ',';
      ++i;
    } else if (value[i] == ',') {
      values.push_back(std::move(current));
      current.clear();
    } else {
      current += value[i];
    }
  }
  values.push_back(std::move(current));
  return values;
}

std::int64_t InstantOf(const json& resource) {
  const json* updated = At(resource, "meta.lastUpdated");
  if (updated == nullptr || !updated->is_string()) return INT64_MIN;
  auto range = ParseFhirDate(updated->get<std::string>());
  return range ? range->begin : INT64_MIN;
}

}  // namespace

struct FhirSearch::Criterion {
  std::string name;
  ParameterDef def;
  struct Alternative {
    std::string prefix;  // dates: eq, ne, lt, gt, le, ge, sa, eb
    FhirTimeRange range{0, 0};
    std::optional<std::string> system;  // tokens: nullopt for "code" (any system)
    std::string code;
  };
  std::vector<Alternative> alternatives;  // any one matches

  bool Matches(const json& resource) const {
    for (const auto& path : def.elements) {
      const json* node = At(resource, path);
      if (node == nullptr) continue;
      if (def.kind == Kind::kDate) {
        auto value = RangeOf(*node);
        if (!value) continue;
        for (const auto& alt : alternatives) {
          const auto& p = alt.range;
          const auto& r = *value;
          const bool eq = r.begin >= p.begin && r.end <= p.end;
          const bool hit = alt.prefix == "eq"   ? eq
                           : alt.prefix == "ne" ? !eq
                           : alt.prefix == "gt" ? r.end > p.end
                           : alt.prefix == "lt" ? r.begin < p.begin
                           : alt.prefix == "ge" ? r.end > p.begin
                           : alt.prefix == "le" ? r.begin < p.end
                           : alt.prefix == "sa" ? r.begin >= p.end
                                                : r.end <= p.begin;  // eb
          if (hit) return true;
        }
      } else if (def.kind == Kind::kId || def.kind == Kind::kUri) {
        if (!node->is_string()) continue;
        for (const auto& alt : alternatives) {
          if (alt.code == node->get<std::string>()) return true;
        }
      } else {
        std::vector<std::pair<std::string, std::string>> tokens;
        TokensOf(*node, tokens);
        for (const auto& alt : alternatives) {
          for (const auto& [system, code] : tokens) {
            const bool system_ok = !alt.system || *alt.system == system;
            const bool code_ok = alt.code.empty() ? alt.system.has_value() : alt.code == code;
            if (system_ok && code_ok) return true;
          }
        }
      }
    }
    return false;
  }
};

std::string FhirIdOf(const std::string& record_id) {
  std::string id = record_id;
  std::replace(id.begin(), id.end(), '_', '-');
  return id;
}

bool IsFhirId(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
         });
}

std::string RecordIdOfFhirId(const std::string& fhir_id) {
  if (!IsFhirId(fhir_id)) return "";
  std::string record = fhir_id.substr(0, fhir_id.find('.'));
  if (record.rfind("consent-", 0) == 0) return record;
  const auto dash = record.find('-');
  if (dash == std::string::npos || dash == 0) return "";
  record[dash] = '_';
  return record;
}

std::vector<json> FhirRestResources(json collection_bundle, const std::string& last_updated) {
  std::map<std::string, std::string, std::less<>> references;  // fullUrl -> Type/id
  std::vector<json> resources;
  const auto entries = collection_bundle.find("entry");
  if (entries == collection_bundle.end() || !entries->is_array()) return resources;
  for (const auto& entry : *entries) {
    const json& resource = entry["resource"];
    if (resource.contains("id") && entry.contains("fullUrl")) {
      references[entry["fullUrl"].get<std::string>()] =
          resource["resourceType"].get<std::string>() + "/" + resource["id"].get<std::string>();
    }
  }
  std::function<void(json&)> rewrite = [&](json& node) {
    if (node.is_object()) {
      for (auto& [key, value] : node.items()) {
        if (key == "reference" && value.is_string()) {
          if (auto found = references.find(value.get_ref<const std::string&>()); found != references.end()) {
            value = found->second;
          }
        } else if (value.is_structured()) {
          rewrite(value);
        }
      }
    } else if (node.is_array()) {
      for (auto& element : node) rewrite(element);
    }
  };
  resources.reserve(entries->size());
  for (auto& entry : *entries) {
    const auto found = entry.find("resource");
    if (found == entry.end() || !found->contains("id")) continue;  // only what has a stable id can be read back
    json resource = std::move(*found);
    rewrite(resource);
    if (!resource.contains("meta") || !resource["meta"].contains("lastUpdated")) {
      resource["meta"]["lastUpdated"] = last_updated;
    }
    resources.push_back(std::move(resource));
  }
  return resources;
}

std::optional<FhirTimeRange> ParseFhirDate(const std::string& text) {
  int year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  // FHIR's years are 0001-9999 (its date type's pattern has no year 0000).
  if (text.size() > 40 || !Digits(text, 0, 4, &year) || year < 1) return std::nullopt;
  std::int64_t unit;  // the width of the range: the text's precision
  std::size_t at = 4;
  auto day_start = [&] { return DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * kMicrosPerDay; };
  if (at == text.size()) {
    const std::int64_t begin = DaysFromCivil(year, 1, 1) * kMicrosPerDay;
    return FhirTimeRange{begin, DaysFromCivil(year + 1, 1, 1) * kMicrosPerDay};
  }
  if (text[at] != '-' || !Digits(text, at + 1, 2, &month) || month < 1 || month > 12) return std::nullopt;
  at += 3;
  if (at == text.size()) {
    const std::int64_t begin = DaysFromCivil(year, static_cast<unsigned>(month), 1) * kMicrosPerDay;
    return FhirTimeRange{begin, begin + DaysInMonth(year, month) * kMicrosPerDay};
  }
  if (text[at] != '-' || !Digits(text, at + 1, 2, &day) || day < 1 || day > DaysInMonth(year, month)) return std::nullopt;
  at += 3;
  if (at == text.size()) return FhirTimeRange{day_start(), day_start() + kMicrosPerDay};
  if (text[at] != 'T' || !Digits(text, at + 1, 2, &hour) || text.size() < at + 6 || text[at + 3] != ':' ||
      !Digits(text, at + 4, 2, &minute) || hour > 23 || minute > 59) {
    return std::nullopt;
  }
  at += 6;
  unit = 60 * kMicrosPerSecond;
  std::int64_t fraction = 0;
  if (at < text.size() && text[at] == ':') {
    if (!Digits(text, at + 1, 2, &second) || second > 59) return std::nullopt;
    at += 3;
    unit = kMicrosPerSecond;
    if (at < text.size() && text[at] == '.') {
      ++at;
      std::size_t digits = 0;
      std::int64_t scale = kMicrosPerSecond;
      while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) {
        if (digits < 6) {
          scale /= 10;
          fraction += (text[at] - '0') * scale;
        }
        ++digits;
        ++at;
      }
      if (digits == 0 || digits > 9) return std::nullopt;
      unit = std::max<std::int64_t>(1, scale);  // 10^(6 - digits) µs: the precision written
    }
  }
  // The zone: Z or +hh:mm / -hh:mm; none means UTC (the server's time).
  std::int64_t offset = 0;
  if (at < text.size()) {
    if (text[at] == 'Z') {
      ++at;
    } else if (text[at] == '+' || text[at] == '-') {
      int oh = 0, om = 0;
      if (!Digits(text, at + 1, 2, &oh) || text.size() < at + 6 || text[at + 3] != ':' || !Digits(text, at + 4, 2, &om) ||
          oh > 14 || om > 59) {
        return std::nullopt;
      }
      offset = (text[at] == '+' ? 1 : -1) * (oh * 3600 + om * 60) * kMicrosPerSecond;
      at += 6;
    } else {
      return std::nullopt;
    }
  }
  if (at != text.size()) return std::nullopt;
  const std::int64_t begin = day_start() + (hour * 3600 + minute * 60 + second) * kMicrosPerSecond + fraction - offset;
  return FhirTimeRange{begin, begin + unit};
}

FhirSearch::FhirSearch(std::string resource_type, const std::vector<FhirSearchParameter>& parameters, bool strict)
    : resource_type_(std::move(resource_type)) {
  const auto type = Table().find(resource_type_);
  if (type == Table().end()) throw Error(ErrorCode::kInvalidArgument, "resource type " + resource_type_ + " is not searchable");
  for (const auto& parameter : parameters) {
    const auto colon = parameter.name.find(':');
    const std::string name = parameter.name.substr(0, colon);
    const auto def = type->second.find(name);
    if (def == type->second.end()) {
      if (strict) Refuse(parameter.name, "is not a search parameter of " + resource_type_ + " here (see /metadata)");
      ignored_.push_back(parameter.name);
      continue;
    }
    if (colon != std::string::npos) Refuse(parameter.name, "modifiers are not supported");
    if (parameter.value.empty()) Refuse(name, "has no value");
    auto criterion = std::make_shared<Criterion>();
    criterion->name = name;
    criterion->def = def->second;
    for (const auto& raw : SplitValues(parameter.value)) {
      Criterion::Alternative alt;
      if (raw.empty()) Refuse(name, "has an empty value");
      if (def->second.kind == Kind::kDate) {
        std::string text = raw;
        alt.prefix = "eq";
        if (text.size() > 2 && std::isalpha(static_cast<unsigned char>(text[0]))) {
          alt.prefix = text.substr(0, 2);
          text = text.substr(2);
          static const std::set<std::string> kPrefixes = {"eq", "ne", "lt", "gt", "le", "ge", "sa", "eb"};
          if (!kPrefixes.contains(alt.prefix)) Refuse(name, "the prefix " + alt.prefix + " is not supported");
        }
        auto range = ParseFhirDate(text);
        if (!range) Refuse(name, "'" + raw.substr(0, 40) + "' is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)");
        alt.range = *range;
      } else if (def->second.kind == Kind::kToken) {
        const auto bar = raw.find('|');
        if (bar == std::string::npos) {
          alt.code = raw;
        } else {
          alt.system = raw.substr(0, bar);
          alt.code = raw.substr(bar + 1);
          if (alt.system->empty() && alt.code.empty()) Refuse(name, "'|' alone is not a token");
        }
      } else {
        if (def->second.kind == Kind::kId && !IsFhirId(raw)) Refuse(name, "'" + raw.substr(0, 64) + "' is not a FHIR id");
        alt.code = raw;
      }
      criterion->alternatives.push_back(std::move(alt));
    }
    criteria_.push_back(std::move(criterion));
  }
}

bool FhirSearch::Matches(const json& resource) const {
  if (resource.value("resourceType", "") != resource_type_) return false;
  return std::all_of(criteria_.begin(), criteria_.end(), [&](const auto& c) { return c->Matches(resource); });
}

FhirSearch::Page FhirSearch::Select(std::vector<json> candidates, int count, const std::string& cursor,
                                    const std::string& scope) const {
  const std::string bound = Sha256Hex(scope).substr(0, 16);
  std::optional<std::pair<std::int64_t, std::string>> after;
  if (!cursor.empty()) {
    std::string raw;
    try {
      if (cursor.size() % 2 == 0 && cursor.size() <= 400) raw = HexDecode(cursor);
    } catch (const std::exception&) {
      raw.clear();  // not hex: refused below
    }
    const auto first = raw.find('\n'), second = raw.find('\n', first == std::string::npos ? 0 : first + 1);
    std::int64_t instant = 0;
    if (first == std::string::npos || second == std::string::npos || raw.substr(second + 1) != bound ||
        std::from_chars(raw.data(), raw.data() + first, instant).ec != std::errc()) {
      Refuse("_cursor", "not a cursor of this search (start again from the first page)");
    }
    after.emplace(instant, raw.substr(first + 1, second - first - 1));
  }
  struct Keyed {
    std::int64_t instant;
    std::string id;
    json resource;
  };
  std::vector<Keyed> matching;
  for (auto& resource : candidates) {
    if (!Matches(resource)) continue;
    const std::int64_t instant = InstantOf(resource);
    std::string id = resource.value("id", "");
    if (after && !(instant < after->first || (instant == after->first && id > after->second))) continue;
    matching.push_back({instant, std::move(id), std::move(resource)});
  }
  std::sort(matching.begin(), matching.end(), [](const Keyed& a, const Keyed& b) {
    return a.instant != b.instant ? a.instant > b.instant : a.id < b.id;
  });
  Page page;
  const std::size_t take = std::min<std::size_t>(matching.size(), static_cast<std::size_t>(std::max(0, count)));
  for (std::size_t i = 0; i < take; ++i) page.resources.push_back(std::move(matching[i].resource));
  if (take < matching.size() && take > 0) {
    page.next_cursor =
        HexEncode(std::to_string(matching[take - 1].instant) + "\n" + matching[take - 1].id + "\n" + bound);
  }
  return page;
}

std::vector<FhirSearch::ParameterInfo> FhirSearch::SupportedParameters(const std::string& resource_type) {
  std::vector<ParameterInfo> out;
  const auto type = Table().find(resource_type);
  if (type == Table().end()) return out;
  for (const auto& [name, def] : type->second) {
    out.push_back({name, def.kind == Kind::kDate ? "date" : def.kind == Kind::kUri ? "uri" : "token", def.documentation});
  }
  return out;
}

PreparedFhirSearch PrepareFhirSearch(const std::string& resource_type, const std::vector<std::string>& types,
                                     const std::string& id, std::vector<FhirSearchParameter> parameters, bool strict,
                                     int count) {
  if (std::find(types.begin(), types.end(), resource_type) == types.end()) {
    std::string names;
    for (const auto& type : types) names += (names.empty() ? "" : ", ") + type;
    throw Error(ErrorCode::kInvalidArgument, "resource_type: must be one of " + names);
  }
  if (count < 0 || count > 100) throw Error(ErrorCode::kInvalidArgument, "count: must be 0-100");
  if (parameters.size() > 32) throw Error(ErrorCode::kInvalidArgument, "parameters: at most 32");
  std::string record_id;
  if (!id.empty()) {
    record_id = RecordIdOfFhirId(id);
    if (record_id.empty()) throw Error(ErrorCode::kNotFound, resource_type + "/" + id.substr(0, 64) + " not found");
    parameters.push_back({"_id", id});
  }
  std::string scope = resource_type + "|" + id + "|" + (strict ? "s" : "l");
  for (const auto& parameter : parameters) scope += "|" + parameter.name + "=" + parameter.value;
  return PreparedFhirSearch{FhirSearch(resource_type, parameters, strict), count == 0 ? 20 : count, record_id, scope};
}

}  // namespace physio
