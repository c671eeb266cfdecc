// The restore drill (issue 30): PostgreSQL archives its WAL and is backed up with
// pgBackRest (Debian's package) while the services write through the API; a
// recovery target time is noted mid-load; the backup is restored to that time
// into a fresh server, the services start on it, and every write acknowledged
// before the target is read back through the API, and none sent after it exists.
// The steps are the ones docs/deploy.md gives an operator.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <thread>

#include "clients.h"
#include "physio/common/ids.h"

namespace physio::testing {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using Wall = std::chrono::system_clock;

// PostgreSQL's timestamptz text for a wall-clock time, in UTC with microseconds.
std::string PgTime(Wall::time_point at) {
  const std::time_t seconds = Wall::to_time_t(at);
  const long micros =
      std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count() % 1'000'000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &utc);
  char full[96];
  std::snprintf(full, sizeof full, "%s.%06ld+00", text, micros);
  return full;
}

struct Write {
  std::string assessment_id;
  Wall::time_point sent, acknowledged;
};

class RestoreDrill : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    char tmpl[] = "/tmp/physio-backup-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    repo_dir_ = tmpl;
    std::filesystem::create_directories(repo_dir_ / "repo");
    std::filesystem::create_directories(repo_dir_ / "log");
    std::filesystem::create_directories(repo_dir_ / "lock");
    // pgBackRest runs as the postgres user (PostgreSQL's archive_command does too).
    if (geteuid() == 0) {
      ASSERT_EQ(std::system(("chown -R postgres:postgres " + repo_dir_.string()).c_str()), 0);
    }
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(repo_dir_, ignored);
  }

  // pgBackRest's configuration: one repository on disk, one stanza for `server`.
  std::string WriteConfig(const PostgresServer& server) {
    const auto path = repo_dir_ / "pgbackrest.conf";
    std::ofstream(path) << "[global]\nrepo1-path=" << (repo_dir_ / "repo").string()
                        << "\nrepo1-retention-full=2\nstart-fast=y\nlog-level-console=warn\nlog-path="
                        << (repo_dir_ / "log").string() << "\nlock-path=" << (repo_dir_ / "lock").string()
                        << "\n\n[physio]\npg1-path=" << server.data_dir().string() << "\npg1-port=" << server.port()
                        << "\npg1-socket-path=" << server.dir().string() << "\n";
    return path.string();
  }

  std::filesystem::path repo_dir_;
};

TEST_F(RestoreDrill, ABackupRestoredToATimeHoldsEveryWriteAcknowledgedBeforeItAndNoneAfter) {
  const auto drill_start = Steady::now();
  // Archiving is configured before the first start; the config file path is known in advance.
  const std::string config_path = (repo_dir_ / "pgbackrest.conf").string();
  PostgresServer source(
      /*durable=*/true, "-c full_page_writes=on -c wal_level=replica -c archive_mode=on -c archive_command='pgbackrest "
                        "--config=" + config_path + " --stanza=physio archive-push %p'");
  const std::string config = WriteConfig(source);
  source.CreateDatabase("physio");
  TestKeys keys;
  RedisServer redis;
  auto services = std::make_unique<ServiceCluster>(keys, redis.port(), source.port(), "physio");
  RunAsPostgresUser({"pgbackrest", "--config=" + config, "--stanza=physio", "stanza-create"});

  // The load: one clinician importing assessments, each acknowledged write noted with when it was sent.
  Caller clinician(*services, MakeToken(keys, "drill", "clin-1", {"clinician"}));
  std::vector<Write> writes;
  std::mutex writes_mutex;
  std::atomic<bool> stop{false};
  std::thread load([&] {
    while (!stop) {
      apb::CreateAssessmentRequest create;
      create.set_request_id(NewId("rq"));
      create.set_patient_id(NewId("pt"));
      auto* pain = create.add_answers();
      pain->set_instrument(cpb::INSTRUMENT_NPRS);
      pain->set_item_id("nprs");
      pain->set_value(4);
      create.mutable_red_flag_screen();
      apb::CreateAssessmentResponse created;
      const auto sent = Wall::now();
      if (clinician.Call(clinician.assessment.get(), &apb::AssessmentService::Stub::CreateAssessment, create, &created)
              .ok()) {
        std::lock_guard lock(writes_mutex);
        writes.push_back({created.assessment().assessment_id(), sent, Wall::now()});
      }
      std::this_thread::sleep_for(10ms);
    }
  });
  std::this_thread::sleep_for(1s);
  // A full backup, under the load.
  const auto backup_start = Steady::now();
  RunAsPostgresUser({"pgbackrest", "--config=" + config, "--stanza=physio", "--type=full", "backup"});
  const long backup_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - backup_start).count();
  std::this_thread::sleep_for(1500ms);
  const auto target = Wall::now();
  std::this_thread::sleep_for(1500ms);
  stop = true;
  load.join();
  services.reset();
  // The WAL holding the target (and the writes after it) reaches the archive.
  source.Execute("SELECT pg_switch_wal()");
  RunAsPostgresUser({"pgbackrest", "--config=" + config, "--stanza=physio", "check"});

  int before = 0, after = 0;
  for (const auto& write : writes) {
    if (write.acknowledged < target) ++before;
    if (write.sent > target) ++after;
  }
  ASSERT_GT(before, 20) << "the load ran before the target";
  ASSERT_GT(after, 20) << "the load ran after the target";

  // Restore into a fresh server: its data directory replaced by the backup, recovered to the target.
  PostgresServer restored;
  restored.Stop();
  const auto restore_start = Steady::now();
  RunAsPostgresUser({"find", restored.data_dir().string(), "-mindepth", "1", "-delete"});
  RunAsPostgresUser({"pgbackrest", "--config=" + config, "--stanza=physio", "--pg1-path=" + restored.data_dir().string(),
                     "--type=time", "--target=" + PgTime(target), "--target-action=promote", "restore"});
  restored.Start();
  auto in_recovery = [&] {
    try {
      return restored.Execute("SELECT pg_is_in_recovery()");
    } catch (const std::exception&) {
      return std::string("unreachable");
    }
  };
  for (int i = 0; i < 300 && in_recovery() != "f"; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(in_recovery(), "f") << "recovery to the target did not finish";
  const long restore_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - restore_start).count();

  // The services on the restored database: every write acknowledged before the target reads back
  // through the API; none sent after it exists.
  RedisServer fresh_redis;
  ServiceCluster on_restored(keys, fresh_redis.port(), restored.port(), "physio");
  Caller reader(on_restored, MakeToken(keys, "drill", "clin-1", {"clinician"}));
  int found_before = 0, found_after = 0, ambiguous = 0;
  for (const auto& write : writes) {
    apb::GetAssessmentRequest get;
    get.set_assessment_id(write.assessment_id);
    apb::GetAssessmentResponse got;
    const auto status = reader.Call(reader.assessment.get(), &apb::AssessmentService::Stub::GetAssessment, get, &got);
    ASSERT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::NOT_FOUND) << status.error_message();
    if (write.acknowledged < target) {
      found_before += status.ok() ? 1 : 0;
      EXPECT_TRUE(status.ok()) << write.assessment_id << " was acknowledged before the target and is missing";
    } else if (write.sent > target) {
      found_after += status.ok() ? 1 : 0;
      EXPECT_FALSE(status.ok()) << write.assessment_id << " was sent after the target and was restored";
    } else {
      ++ambiguous;  // in flight at the target: either outcome is right
    }
  }
  EXPECT_EQ(found_before, before);
  EXPECT_EQ(found_after, 0);
  const long drill_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - drill_start).count();
  std::printf("restore drill: %d writes acknowledged before the target (all restored), %d sent after it (none "
              "restored), %d in flight at it; full backup under load %ld ms, restore and recovery %ld ms, drill %ld ms\n",
              before, after, ambiguous, backup_ms, restore_ms, drill_ms);
}

}  // namespace
}  // namespace physio::testing
