#include "physio/auth/token_minter.h"

#include <jwt/jwt.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>

namespace physio {

namespace {
std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}
}  // namespace

RsaKeyPair GenerateRsaKeyPair(int bits) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(static_cast<unsigned>(bits)), EVP_PKEY_free);
  if (!key) throw std::runtime_error("RSA key generation failed");
  std::unique_ptr<BIO, decltype(&BIO_free)> priv(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> pub(BIO_new(BIO_s_mem()), BIO_free);
  if (!PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ||
      !PEM_write_bio_PUBKEY(pub.get(), key.get())) {
    throw std::runtime_error("PEM encoding failed");
  }
  return {BioToString(priv.get()), BioToString(pub.get())};
}

std::string MintToken(const std::string& private_key_pem, const TokenRequest& request) {
  using namespace jwt::params;
  jwt::jwt_object token{algorithm("RS256"), secret(private_key_pem)};
  // iat, nbf and exp are all counted from `now` (moved by issued_at_offset for tests).
  auto now = std::chrono::system_clock::now() + request.issued_at_offset;
  token.add_claim("iss", request.issuer)
      .add_claim("aud", request.audience)
      .add_claim("sub", request.subject)
      .add_claim("tenant", request.tenant)
      .add_claim("iat", now)
      .add_claim("nbf", now + request.not_before_offset)
      .add_claim("exp", now + request.lifetime);
  if (!request.patient_id.empty()) token.add_claim("patient_id", request.patient_id);
  if (!request.clinics.empty()) token.payload().add_claim("clinics", request.clinics);
  if (!request.platform.empty()) token.add_claim("platform", request.platform);
  if (!request.client_id.empty()) token.add_claim("client_id", request.client_id);
  if (!request.scope.empty()) token.add_claim("scope", request.scope);
  if (!request.key_id.empty()) token.header().add_header("kid", request.key_id);
  token.payload().add_claim("roles", request.roles);
  return token.signature();
}

}  // namespace physio
