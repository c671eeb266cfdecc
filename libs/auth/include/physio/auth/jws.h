#pragma once
// JSON Web Signatures with OpenSSL: the three algorithms we accept (RS256, PS256,
// ES256, RFC 7518 section 3), public keys from PEM or from a JSON Web Key Set
// (RFC 7517), and base64url. Plain functions over bytes: the token rules (which
// issuer, which claims) are in token_verifier.
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;

namespace physio {

enum class JwsAlg { kRs256, kPs256, kEs256 };

std::string JwsAlgName(JwsAlg alg);
// Only the three names above; "none", HS256 and every other name are refused.
std::optional<JwsAlg> ParseJwsAlg(std::string_view name);

// Strict base64url without padding (RFC 7515 section 2): any other byte, or a
// length no encoding produces, is refused.
bool Base64UrlDecode(std::string_view text, std::string* out);
std::string Base64UrlEncode(std::string_view bytes);

// A verifying key: RSA (2048 to 8192 bits) or EC on P-256.
class PublicKey {
 public:
  enum class Type { kRsa, kEcP256 };
  // Throws std::runtime_error when `pem` is not such a public key.
  static PublicKey FromPem(const std::string& pem);
  Type type() const { return type_; }
  // RSA keys verify RS256 and PS256, P-256 keys ES256.
  bool Suits(JwsAlg alg) const;
  // The signature over `signing_input` (header "." payload) by this key with `alg`.
  bool Verify(JwsAlg alg, std::string_view signing_input, std::string_view signature) const;

 private:
  friend struct JwkParser;
  PublicKey(std::shared_ptr<EVP_PKEY> key, Type type) : key_(std::move(key)), type_(type) {}
  std::shared_ptr<EVP_PKEY> key_;
  Type type_;
};

struct JwksDocument {
  std::map<std::string, PublicKey> keys;  // by kid
  std::vector<std::string> skipped;       // why keys were left out (another type, use "enc", no kid, ...)
};

// A JSON Web Key Set. Keys we cannot use (other types or curves, "use": "enc",
// private parts only, duplicate kids) are skipped with a reason; a document
// larger than `max_bytes`, not a JSON object with a "keys" array, or with more
// than `max_keys` entries throws std::runtime_error.
JwksDocument ParseJwks(std::string_view json, std::size_t max_keys = 64, std::size_t max_bytes = 256 * 1024);

// Test and tool helpers: key pairs and compact JWS signing.
struct KeyPairPem {
  std::string private_key_pem;
  std::string public_key_pem;
};
KeyPairPem GenerateEcP256KeyPair();
// "<b64url(header)>.<b64url(payload)>.<b64url(signature)>" with `alg` by the private key.
std::string SignCompactJws(const std::string& private_key_pem, JwsAlg alg, const std::string& header_json,
                           const std::string& payload_json);
// The public key as a JWK (kty, n/e or crv/x/y, kid, alg when given).
std::string PublicKeyJwk(const std::string& public_key_pem, const std::string& kid, const std::string& alg = "");

}  // namespace physio
