// The method-to-roles tables: each names exactly its service's RPCs, the
// pipeline's check refuses what the table does not allow, and the README's RPC
// table says the same as the code.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "assessment_roles.h"
#include "physio/assessment/v1/assessment.pb.h"
#include "physio/common/error.h"
#include "physio/planning/v1/planning.pb.h"
#include "physio/progress/v1/progress.pb.h"
#include "physio/server/service_runtime.h"
#include "planning_roles.h"
#include "progress_roles.h"

namespace physio {
namespace {

struct ServiceTable {
  std::string readme_name;   // the README's "service" column
  std::string grpc_name;     // full gRPC service name
  const MethodRoles* roles;
};

std::vector<ServiceTable> Tables() {
  // Touching one message of each API links its generated descriptors into this program.
  (void)assessment::v1::StartIntakeRequest::descriptor();
  (void)planning::v1::GeneratePlanRequest::descriptor();
  (void)progress::v1::RecordVisitRequest::descriptor();
  return {{"assessment", "physio.assessment.v1.AssessmentService", &assessment::kAssessmentRoles},
          {"planning", "physio.planning.v1.PlanningService", &planning::kPlanningRoles},
          {"progress", "physio.progress.v1.ProgressService", &progress::kProgressRoles}};
}

CallContext WithRoles(std::set<Role> roles) {
  CallContext ctx;
  ctx.roles = std::move(roles);
  return ctx;
}

TEST(MethodRoles, EachTableNamesExactlyItsServicesMethods) {
  for (const auto& table : Tables()) {
    EXPECT_NO_THROW(CheckCoversMethods(*table.roles, {table.grpc_name})) << table.grpc_name;
  }
}

TEST(MethodRoles, ATableMissingAMethodOrNamingAnUnservedOneIsRefused) {
  try {
    CheckCoversMethods(MethodRoles{{"GeneratePlan", {Role::kClinician}}}, {"physio.planning.v1.PlanningService"});
    FAIL() << "a table naming one method of many was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ApprovePlan"), std::string::npos) << e.what();
  }
  try {
    CheckCoversMethods(MethodRoles{{"StartIntake", {Role::kClinician}}}, {"physio.planning.v1.PlanningService"});
    FAIL() << "a table naming a method the service does not serve was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("StartIntake"), std::string::npos) << e.what();
  }
  EXPECT_THROW(CheckCoversMethods(planning::kPlanningRoles, {"physio.planning.v1.NoSuchService"}),
               std::invalid_argument);
}

TEST(MethodRoles, RequireAllowsTheTablesRolesOnlyAndRefusesUnknownMethods) {
  const auto& roles = progress::kProgressRoles;
  EXPECT_NO_THROW(roles.Require(WithRoles({Role::kClinician}), "AcknowledgeAlert"));
  try {
    roles.Require(WithRoles({Role::kIntegrator, Role::kPatient}), "AcknowledgeAlert");
    FAIL() << "an integrator acknowledged an alert";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    EXPECT_STREQ(e.what(), "this call needs one of the roles: clinician");
  }
  EXPECT_NO_THROW(roles.Require(WithRoles({Role::kPatient}), "LogHomeExercise"));
  EXPECT_THROW(roles.Require(WithRoles({Role::kService}), "LogHomeExercise"), Error);
  EXPECT_THROW(roles.Require(WithRoles({}), "RecordVisit"), Error);
  try {
    roles.Require(WithRoles({Role::kClinician}), "DropEverything");
    FAIL() << "a method missing from the table was allowed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
  }
}

// Text outside any parentheses (the README explains RPCs and roles in them).
std::string OutsideParentheses(const std::string& text) {
  std::string out;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    else if (c == ')') depth = depth > 0 ? depth - 1 : 0;
    else if (depth == 0) out += c;
  }
  return out;
}

std::vector<std::string> Cells(const std::string& row) {
  std::vector<std::string> cells;
  std::string cell;
  int depth = 0;  // a '|' inside parentheses or backticks is not a column break
  bool code = false;
  for (char c : row.substr(1)) {
    if (c == '`') code = !code;
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == '|' && depth == 0 && !code) {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += c;
    }
  }
  return cells;
}

std::set<Role> RolesIn(const std::string& cell) {
  const std::string text = OutsideParentheses(cell);
  if (text.find("any authenticated caller") != std::string::npos) return kEveryRole;
  std::set<Role> roles;
  std::stringstream list(text);
  std::string name;
  while (std::getline(list, name, ',')) {
    name = std::regex_replace(name, std::regex("^\\s+|\\s+$"), "");
    Role role;
    if (!ParseRole(name, &role)) ADD_FAILURE() << "README names an unknown role '" << name << "' in: " << cell;
    roles.insert(role);
  }
  return roles;
}

TEST(MethodRoles, TheReadmeRpcTableSaysWhatTheTablesEnforce) {
  std::ifstream readme(std::string(PHYSIO_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(readme) << "README.md not found";
  std::string line;
  bool in_table = false;
  std::map<std::pair<std::string, std::string>, std::set<Role>> documented;  // (service, method) -> roles
  while (std::getline(readme, line)) {
    if (line.starts_with("| service | RPC | roles |")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (!line.starts_with("|")) break;
    if (line.starts_with("|---")) continue;
    const auto cells = Cells(line);
    ASSERT_EQ(cells.size(), 3u) << line;
    std::vector<std::string> services;
    const std::string service = std::regex_replace(cells[0], std::regex("^\\s+|\\s+$"), "");
    if (service == "all three") {
      services = {"assessment", "planning", "progress"};
    } else {
      services = {service};
    }
    const std::string rpcs = OutsideParentheses(cells[1]);
    const std::regex name("`([A-Za-z]+)`");
    int named = 0;
    for (auto it = std::sregex_iterator(rpcs.begin(), rpcs.end(), name); it != std::sregex_iterator(); ++it) {
      ++named;
      for (const auto& s : services) {
        const auto key = std::make_pair(s, (*it)[1].str());
        EXPECT_FALSE(documented.contains(key)) << key.first << " " << key.second << " is in the README twice";
        documented[key] = RolesIn(cells[2]);
      }
    }
    EXPECT_GT(named, 0) << "no RPC named in: " << line;
  }
  ASSERT_FALSE(documented.empty()) << "README has no '| service | RPC | roles |' table";
  for (const auto& table : Tables()) {
    for (const auto& [method, roles] : table.roles->entries()) {
      const auto found = documented.find({table.readme_name, method});
      if (found == documented.end()) {
        ADD_FAILURE() << table.readme_name << " " << method << " is missing from the README's RPC table";
        continue;
      }
      EXPECT_EQ(found->second, roles) << table.readme_name << " " << method
                                      << ": the README's roles differ from " << table.readme_name << "_roles.h";
      documented.erase(found);
    }
  }
  for (const auto& [key, roles] : documented) {
    ADD_FAILURE() << "the README lists " << key.first << " " << key.second << ", which the service does not serve";
  }
}

}  // namespace
}  // namespace physio
