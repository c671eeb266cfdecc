// FHIR search (libs/common fhir_search): dates, tokens, paging and its cursor, strict and
// lenient handling, ids; SMART scopes (libs/auth); the REST form of the exports; and that the
// three services' SearchFhir messages share one wire layout (the FHIR REST API sends one to all).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/call_context.h"
#include "physio/common/error.h"
#include "physio/common/fhir_search.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"

namespace physio {
namespace {

using nlohmann::json;

json Observation(const std::string& id, const std::string& code, const std::string& when,
                 const std::string& updated = "") {
  return {{"resourceType", "Observation"},
          {"id", id},
          {"status", "final"},
          {"code", {{"coding", json::array({{{"system", "http://loinc.org"}, {"code", code}}})}}},
          {"effectiveDateTime", when},
          {"meta", {{"lastUpdated", updated.empty() ? when : updated}}}};
}

std::vector<std::string> Ids(const std::vector<json>& resources) {
  std::vector<std::string> ids;
  for (const auto& resource : resources) ids.push_back(resource["id"]);
  return ids;
}

TEST(FhirDate, PrecisionMakesARange) {
  auto year = ParseFhirDate("2026");
  ASSERT_TRUE(year);
  EXPECT_EQ(year->end - year->begin, 365LL * 86400 * 1000000);
  auto month = ParseFhirDate("2024-02");  // a leap February
  ASSERT_TRUE(month);
  EXPECT_EQ(month->end - month->begin, 29LL * 86400 * 1000000);
  auto day = ParseFhirDate("1970-01-02");
  ASSERT_TRUE(day);
  EXPECT_EQ(day->begin, 86400LL * 1000000);
  auto instant = ParseFhirDate("1970-01-01T01:00:00+01:00");
  ASSERT_TRUE(instant);
  EXPECT_EQ(instant->begin, 0);
  EXPECT_EQ(instant->end, 1000000);
  auto fraction = ParseFhirDate("1970-01-01T00:00:01.5Z");
  ASSERT_TRUE(fraction);
  EXPECT_EQ(fraction->begin, 1500000);
  EXPECT_EQ(fraction->end - fraction->begin, 100000);
}

TEST(FhirDate, MalformedIsRefused) {
  for (const char* bad : {"", "26", "2026-13", "2026-02-30", "2026-01-01T25:00", "2026-01-01T10:00:00X",
                          "2026-01-01 10:00", "2026-01-01T10:00:00+1:00", "yesterday", "0000", "0000-01-01",
                          "0000-12-31T23:59:59Z"}) {
    EXPECT_FALSE(ParseFhirDate(bad)) << bad;
  }
}

TEST(FhirSearchTest, DatePrefixesCompareRanges) {
  const std::vector<json> all = {Observation("a", "1", "2026-01-10T10:00:00Z"), Observation("b", "1", "2026-02-10T10:00:00Z"),
                                 Observation("c", "1", "2026-03-10T10:00:00Z")};
  auto ids = [&](const std::string& value) {
    FhirSearch search("Observation", {{"date", value}}, true);
    return Ids(search.Select(all, 100, "", "s").resources);
  };
  EXPECT_EQ(ids("2026-02"), (std::vector<std::string>{"b"}));
  EXPECT_EQ(ids("ge2026-02-10"), (std::vector<std::string>{"c", "b"}));
  EXPECT_EQ(ids("gt2026-02-10"), (std::vector<std::string>{"c"}));
  EXPECT_EQ(ids("lt2026-02-10"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ids("le2026-02-10"), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(ids("ne2026-02"), (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(ids("2026-01,2026-03"), (std::vector<std::string>{"c", "a"}));
  // Two parameters: both apply.
  FhirSearch both("Observation", {{"date", "ge2026-01-15"}, {"date", "lt2026-03-01"}}, true);
  EXPECT_EQ(Ids(both.Select(all, 100, "", "s").resources), (std::vector<std::string>{"b"}));
}

TEST(FhirSearchTest, TokensMatchSystemAndCode) {
  const std::vector<json> all = {Observation("a", "72514-3", "2026-01-01T00:00:00Z"),
                                 Observation("b", "97909-6", "2026-01-02T00:00:00Z")};
  auto ids = [&](const std::string& value) {
    return Ids(FhirSearch("Observation", {{"code", value}}, true).Select(all, 100, "", "s").resources);
  };
  EXPECT_EQ(ids("72514-3"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ids("http://loinc.org|97909-6"), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(ids("http://snomed.info/sct|97909-6").empty());
  EXPECT_TRUE(ids("|97909-6").empty()) << "|code means no system";
  EXPECT_EQ(ids("http://loinc.org|"), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(ids("72514-3,97909-6"), (std::vector<std::string>{"b", "a"}));
}

TEST(FhirSearchTest, PagesAreStableAndTheCursorIsBoundToTheSearch) {
  std::vector<json> all;
  for (int i = 0; i < 7; ++i) {
    // Two share a time: the id breaks the tie.
    const std::string when = "2026-01-0" + std::to_string(i < 2 ? 1 : i) + "T00:00:00Z";
    all.push_back(Observation("o" + std::to_string(i), "1", when));
  }
  FhirSearch search("Observation", {}, false);
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = search.Select(all, 3, cursor, "tenant|patient|scope");
    for (const auto& id : Ids(page.resources)) seen.push_back(id);
    cursor = page.next_cursor;
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"o6", "o5", "o4", "o3", "o2", "o0", "o1"}));

  const std::string second = search.Select(all, 3, "", "tenant|patient|scope").next_cursor;
  EXPECT_THROW(search.Select(all, 3, second, "tenant|other-patient|scope"), Error);
  EXPECT_THROW(search.Select(all, 3, "zz", "tenant|patient|scope"), Error);
  EXPECT_THROW(search.Select(all, 3, "6869", "tenant|patient|scope"), Error);
}

TEST(FhirSearchTest, UnknownParametersAreRefusedWhenStrictAndListedOtherwise) {
  try {
    FhirSearch("Observation", {{"value-quantity", "5"}}, true);
    FAIL() << "strict handling accepted an unknown parameter";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("value-quantity"), std::string::npos);
  }
  FhirSearch lenient("Observation", {{"value-quantity", "5"}, {"code", "1"}}, false);
  EXPECT_EQ(lenient.ignored(), (std::vector<std::string>{"value-quantity"}));
  // Whatever the handling: a malformed value, a modifier, an unknown prefix, an unknown type.
  EXPECT_THROW(FhirSearch("Observation", {{"date", "2026-99"}}, false), Error);
  EXPECT_THROW(FhirSearch("Observation", {{"code:text", "pain"}}, false), Error);
  EXPECT_THROW(FhirSearch("Observation", {{"date", "ap2026"}}, false), Error);
  EXPECT_THROW(FhirSearch("Observation", {{"date", ""}}, false), Error);
  EXPECT_THROW(FhirSearch("Patient", {}, false), Error);
}

TEST(FhirSearchTest, PrepareChecksTheRequest) {
  EXPECT_THROW(PrepareFhirSearch("CarePlan", {"Observation"}, "", {}, false, 0), Error);
  EXPECT_THROW(PrepareFhirSearch("Observation", {"Observation"}, "", {}, false, 101), Error);
  auto read = PrepareFhirSearch("Observation", {"Observation"}, "asm-0123.obs-odi", {}, false, 0);
  EXPECT_EQ(read.record_id, "asm_0123");
  EXPECT_EQ(read.count, 20);
  try {
    PrepareFhirSearch("Observation", {"Observation"}, "no_underscores_in_fhir_ids", {}, false, 0);
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  }
}

TEST(FhirIds, RoundTrip) {
  EXPECT_EQ(FhirIdOf("plan_3f2a"), "plan-3f2a");
  EXPECT_EQ(RecordIdOfFhirId("plan-3f2a.goal-1"), "plan_3f2a");
  EXPECT_EQ(RecordIdOfFhirId("consent-17"), "consent-17");
  EXPECT_EQ(RecordIdOfFhirId("nodash"), "");
  EXPECT_EQ(RecordIdOfFhirId(std::string(65, 'a')), "");
  EXPECT_FALSE(IsFhirId("a/b"));
}

TEST(FhirRest, ResourcesGetIdsReferencesAndLastUpdated) {
  const json bundle = {{"resourceType", "Bundle"},
                       {"type", "collection"},
                       {"entry", json::array({{{"fullUrl", "urn:uuid:1"}, {"resource", {{"resourceType", "Goal"}, {"id", "g1"}}}},
                                              {{"fullUrl", "urn:uuid:2"},
                                               {"resource", {{"resourceType", "CarePlan"},
                                                             {"id", "c1"},
                                                             {"goal", json::array({{{"reference", "urn:uuid:1"}}})}}}},
                                              {{"fullUrl", "urn:uuid:3"}, {"resource", {{"resourceType", "Basic"}}}}})}};
  const auto resources = FhirRestResources(bundle, "2026-12-01T10:00:00Z");
  ASSERT_EQ(resources.size(), 2u) << "a resource without an id is not served";
  EXPECT_EQ(resources[1]["goal"][0]["reference"], "Goal/g1");
  EXPECT_EQ(resources[0]["meta"]["lastUpdated"], "2026-12-01T10:00:00Z");
}

TEST(SmartScopes, HonouredWhenTheTokenHasThem) {
  CallContext ctx;
  EXPECT_TRUE(SmartScopesAllow(ctx, "CarePlan", false)) << "no SMART scopes: roles decide";
  ctx.smart_scopes = {"system/CarePlan.read"};
  EXPECT_TRUE(SmartScopesAllow(ctx, "CarePlan", false));
  EXPECT_FALSE(SmartScopesAllow(ctx, "CarePlan", true));
  EXPECT_FALSE(SmartScopesAllow(ctx, "Observation", false));
  ctx.smart_scopes = {"patient/*.rs"};
  EXPECT_TRUE(SmartScopesAllow(ctx, "Observation", false));
  EXPECT_FALSE(SmartScopesAllow(ctx, "QuestionnaireResponse", true));
  ctx.smart_scopes = {"user/QuestionnaireResponse.cruds"};
  EXPECT_TRUE(SmartScopesAllow(ctx, "QuestionnaireResponse", true));
  EXPECT_TRUE(IsSmartResourceScope("system/*.*"));
  EXPECT_FALSE(IsSmartResourceScope("openid"));
  EXPECT_FALSE(IsSmartResourceScope("system/CarePlan.rc"));  // v2 letters are in cruds order
  EXPECT_FALSE(IsSmartResourceScope("launch/patient"));
}

// The FHIR REST API builds one SearchFhir request and sends it to whichever service holds the
// type: their messages must agree field by field.
TEST(FhirRest, SearchMessagesShareOneLayout) {
  auto same = [](const google::protobuf::Descriptor* a, const google::protobuf::Descriptor* b) {
    ASSERT_EQ(a->field_count(), b->field_count()) << a->full_name() << " vs " << b->full_name();
    for (int i = 0; i < a->field_count(); ++i) {
      const auto* fa = a->field(i);
      const auto* fb = b->FindFieldByNumber(fa->number());
      ASSERT_NE(fb, nullptr) << fa->full_name();
      EXPECT_EQ(fa->name(), fb->name());
      EXPECT_EQ(fa->type(), fb->type());
      EXPECT_EQ(fa->is_repeated(), fb->is_repeated());
    }
  };
  const auto* request = assessment::v1::SearchFhirRequest::descriptor();
  same(request, planning::v1::SearchFhirRequest::descriptor());
  same(request, progress::v1::SearchFhirRequest::descriptor());
  same(request, assessment::v1::SearchFhirAuditEventsRequest::descriptor());
  const auto* response = assessment::v1::SearchFhirResponse::descriptor();
  same(response, planning::v1::SearchFhirResponse::descriptor());
  same(response, progress::v1::SearchFhirResponse::descriptor());
  same(response, assessment::v1::SearchFhirAuditEventsResponse::descriptor());
}

}  // namespace
}  // namespace physio
