// Mints RS256 tokens from a local development key, and makes that key.
//   physio-mint-token --generate-key=DIR          writes DIR/jwt-private.pem and DIR/jwt-public.pem
//   physio-mint-token --key=FILE --tenant=T --sub=S --roles=clinician[,..] [--patient-id=P] [--clinics=C[,..]]
//                     [--platform=P]
// Production tokens come from the deployment's identity provider, not from this tool.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/common/config.h"

int main(int argc, char** argv) {
  try {
    physio::Config config({{"generate-key", "", "directory to write a new RS256 key pair into"},
                           {"key", "", "PEM private key to sign with"},
                           {"issuer", "physio-dev", "iss claim"},
                           {"audience", "physio-backend", "aud claim"},
                           {"tenant", "", "tenant claim"},
                           {"sub", "", "subject (principal id)"},
                           {"roles", "", "comma-separated roles: integrator, clinician, patient, service, auditor"},
                           {"patient-id", "", "patient_id claim (patient tokens)"},
                           {"clinics", "", "comma-separated clinics claim (staff tokens): the clinics the caller works at"},
                           {"platform", "", "platform claim: the telehealth platform the caller acts through"},
                           {"ttl-seconds", "3600", "lifetime"}},
                          argc, argv);
    if (config.help_requested()) {
      std::cout << config.Usage(argv[0]);
      return 0;
    }
    if (!config.Get("generate-key").empty()) {
      std::filesystem::path dir = config.Get("generate-key");
      std::filesystem::create_directories(dir);
      auto pair = physio::GenerateRsaKeyPair();
      {
        // Created 0600 from the first byte (no moment when another user could read it).
        const mode_t previous = ::umask(077);
        std::ofstream(dir / "jwt-private.pem") << pair.private_key_pem;
        ::umask(previous);
      }
      std::filesystem::permissions(dir / "jwt-private.pem", std::filesystem::perms::owner_read |
                                                                std::filesystem::perms::owner_write);
      std::ofstream(dir / "jwt-public.pem") << pair.public_key_pem;
      std::cout << (dir / "jwt-public.pem").string() << "\n";
      return 0;
    }
    physio::TokenRequest request;
    request.issuer = config.Get("issuer");
    request.audience = config.Get("audience");
    request.tenant = config.Get("tenant");
    request.subject = config.Get("sub");
    request.patient_id = config.Get("patient-id");
    request.platform = config.Get("platform");
    request.lifetime = std::chrono::seconds(config.GetInt("ttl-seconds"));
    std::stringstream roles(config.Get("roles"));
    for (std::string role; std::getline(roles, role, ',');) request.roles.push_back(role);
    std::stringstream clinics(config.Get("clinics"));
    for (std::string clinic; std::getline(clinics, clinic, ',');) request.clinics.push_back(clinic);
    if (request.tenant.empty() || request.subject.empty() || request.roles.empty()) {
      std::cerr << "--tenant, --sub and --roles are required\n";
      return 2;
    }
    std::cout << physio::MintToken(physio::ReadFileOrThrow(config.Get("key")), request) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "physio-mint-token: " << e.what() << "\n";
    return 1;
  }
}
