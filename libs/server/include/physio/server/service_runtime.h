#pragma once
// Everything a service process has besides its own logic: token verifier,
// Redis and Postgres pools, the audit trail, migrations of its schema (retried
// while Postgres is still starting), and the gRPC host whose health follows both stores.
#include <memory>
#include <string>
#include <vector>

#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"
#include "physio/db/audit.h"
#include "physio/db/migrations.h"
#include "physio/db/pg.h"
#include "physio/redis/redis_pool.h"
#include "physio/server/service_host.h"

namespace physio {

class ServiceRuntime {
 public:
  ServiceRuntime(const Config& config, const std::string& schema, const std::vector<Migration>& migrations,
                 std::vector<std::string> health_names);
  ~ServiceRuntime() { Shutdown(); }

  const Config& config() const { return config_; }
  const TokenVerifier& verifier() const { return verifier_; }
  RedisPool& redis() { return redis_; }
  PgPool& pg() { return pg_; }
  AuditTrail& audit() { return audit_; }

  int Serve(grpc::Service* service);
  int port() const { return host_.port(); }
  void Shutdown() { host_.Shutdown(); }

 private:
  const Config& config_;
  TokenVerifier verifier_;
  RedisPool redis_;
  PgPool pg_;
  AuditTrail audit_;
  ServiceHost host_;
};

}  // namespace physio
