// libFuzzer: any bytes as an HTTP request to the Connect port (issue 25). The
// gateway runs as in a service: a real HttpGateway on a loopback port in front
// of an in-process gRPC server (with no services registered, every call it
// passes on is UNIMPLEMENTED: what is fuzzed is the gateway's own path: the
// request line, headers, bounds, header checks before gRPC metadata, the token
// check before the body, body codecs). Each input is written to a fresh
// connection whose write side is then closed, and the answer read to the end.
// A crash, an ASan/UBSan report or gRPC's abort on bad metadata fails the run.
//
// The literal "Bearer VALID" in an input is replaced with a token that
// verifies, so the paths after authentication (body parsing, the call) are
// reached too.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "physio/assessment/v1/assessment.pb.h"
#include "physio/auth/token_minter.h"
#include "physio/auth/token_verifier.h"
#include "physio/server/http_gateway.h"

namespace {

struct Gateway {
  physio::RsaKeyPair keys = physio::GenerateRsaKeyPair(2048);
  physio::TokenVerifier verifier{keys.public_key_pem, "iss", "aud"};
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<physio::HttpGateway> gateway;
  std::string token;

  Gateway() {
    // Links the generated descriptors the gateway looks procedures up in.
    (void)physio::assessment::v1::CreateAssessmentRequest::descriptor();
    grpc::ServerBuilder builder;
    server = builder.BuildAndStart();
    physio::HttpGatewaySettings settings;
    settings.listen = "127.0.0.1:0";
    settings.cors_origins = {"https://app.example.org"};
    settings.max_body_bytes = 64 * 1024;
    settings.request_read_timeout = std::chrono::milliseconds(2000);
    settings.default_timeout = std::chrono::milliseconds(2000);
    gateway = std::make_unique<physio::HttpGateway>(
        settings, server->InProcessChannel(grpc::ChannelArguments()),
        std::vector<std::string>{"physio.assessment.v1.AssessmentService"}, verifier);
    gateway->Start();
    token = physio::MintToken(keys.private_key_pem, {"iss", "aud", "fuzz-tenant", "fuzz-user", {"clinician"}});
  }
};

Gateway& TheGateway() {
  static Gateway gateway;
  return gateway;
}

void Exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    std::size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    char buffer[4096];
    while (recv(fd, buffer, sizeof buffer, 0) > 0) {
    }
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  TheGateway();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& gateway = TheGateway();
  std::string request(reinterpret_cast<const char*>(data), size);
  static const std::string kMarker = "Bearer VALID";
  for (auto at = request.find(kMarker); at != std::string::npos; at = request.find(kMarker, at + 1)) {
    request.replace(at, kMarker.size(), "Bearer " + gateway.token);
  }
  Exchange(gateway.gateway->port(), request);
  return 0;
}
