#include "physio/auth/jws.h"

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <array>
#include <stdexcept>

namespace physio {

namespace {
template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* key) { return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free); }

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Sextet(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// The key's type, or nullopt for anything we do not verify with.
std::optional<PublicKey::Type> TypeOf(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < 2048 || bits > 8192) return std::nullopt;
    return PublicKey::Type::kRsa;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    std::size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) != 1) {
      return std::nullopt;
    }
    if (std::string_view(group) != "prime256v1" && std::string_view(group) != "P-256") return std::nullopt;
    return PublicKey::Type::kEcP256;
  }
  return std::nullopt;
}

const EVP_MD* Sha256() { return EVP_sha256(); }
}  // namespace

std::string JwsAlgName(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kRs256: return "RS256";
    case JwsAlg::kPs256: return "PS256";
    case JwsAlg::kEs256: return "ES256";
  }
  return "";
}

std::optional<JwsAlg> ParseJwsAlg(std::string_view name) {
  if (name == "RS256") return JwsAlg::kRs256;
  if (name == "PS256") return JwsAlg::kPs256;
  if (name == "ES256") return JwsAlg::kEs256;
  return std::nullopt;
}

bool Base64UrlDecode(std::string_view text, std::string* out) {
  // A length of 1 modulo 4 is never produced by an encoder.
  if (text.size() % 4 == 1) return false;
  out->clear();
  out->reserve(text.size() * 3 / 4);
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char c : text) {
    const int value = Sextet(c);
    if (value < 0) return false;
    buffer = (buffer << 6) | static_cast<unsigned>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero (canonical encoding).
  return (buffer & ((1u << bits) - 1)) == 0;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

PublicKey PublicKey::FromPem(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::runtime_error("out of memory");
  auto key = Own(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("not a PEM public key");
  auto type = TypeOf(key.get());
  if (!type) throw std::runtime_error("not an RSA key of 2048 to 8192 bits or an EC key on P-256");
  return PublicKey(std::move(key), *type);
}

bool PublicKey::Suits(JwsAlg alg) const {
  return type_ == Type::kRsa ? (alg == JwsAlg::kRs256 || alg == JwsAlg::kPs256) : alg == JwsAlg::kEs256;
}

bool PublicKey::Verify(JwsAlg alg, std::string_view signing_input, std::string_view signature) const {
  if (!Suits(alg)) return false;
  std::string der;
  std::string_view checked = signature;
  if (alg == JwsAlg::kEs256) {
    // JWS carries R || S, 32 bytes each (RFC 7518 section 3.4); OpenSSL wants DER.
    if (signature.size() != 64) return false;
    EcdsaSig sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()) + 32, 32, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return false;
    }
    unsigned char* buffer = nullptr;
    const int length = i2d_ECDSA_SIG(sig.get(), &buffer);
    if (length <= 0) return false;
    der.assign(reinterpret_cast<char*>(buffer), static_cast<std::size_t>(length));
    OPENSSL_free(buffer);
    checked = der;
  }
  MdCtx md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!md || EVP_DigestVerifyInit(md.get(), &pctx, Sha256(), nullptr, key_.get()) != 1) return false;
  if (alg == JwsAlg::kRs256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) return false;
  if (alg == JwsAlg::kPs256) {
    // PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt (RFC 7518 section 3.5).
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, Sha256()) != 1) {
      return false;
    }
  }
  return EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(checked.data()), checked.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
}

// JWK members to OpenSSL keys (RFC 7518 section 6).
struct JwkParser {
  static Bn Number(const nlohmann::json& jwk, const char* member, std::size_t max_bytes, std::string* bytes_out = nullptr) {
    if (!jwk.contains(member) || !jwk[member].is_string()) throw std::runtime_error(std::string("no \"") + member + "\"");
    std::string bytes;
    if (!Base64UrlDecode(jwk[member].get<std::string>(), &bytes) || bytes.empty() || bytes.size() > max_bytes) {
      throw std::runtime_error(std::string("malformed \"") + member + "\"");
    }
    if (bytes_out) *bytes_out = bytes;
    return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
  }

  static PublicKey FromData(const char* type, OSSL_PARAM* params) {
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
      throw std::runtime_error("not a valid public key");
    }
    auto key = Own(raw);
    // An EC point must be on the curve; an RSA modulus and exponent must be sane.
    PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) throw std::runtime_error("public key check failed");
    auto key_type = TypeOf(key.get());
    if (!key_type) throw std::runtime_error("RSA keys must have 2048 to 8192 bits");
    return PublicKey(std::move(key), *key_type);
  }

  static PublicKey Parse(const nlohmann::json& jwk) {
    const std::string kty = jwk.value("kty", "");
    ParamBld build(OSSL_PARAM_BLD_new());
    if (!build) throw std::runtime_error("out of memory");
    if (kty == "RSA") {
      Bn n = Number(jwk, "n", 1024);
      Bn e = Number(jwk, "e", 8);
      if (!n || !e || OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
          OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
        throw std::runtime_error("malformed RSA key");
      }
      Params params(OSSL_PARAM_BLD_to_param(build.get()));
      return FromData("RSA", params.get());
    }
    if (kty == "EC") {
      if (jwk.value("crv", "") != "P-256") throw std::runtime_error("curve other than P-256");
      std::string x, y;
      Number(jwk, "x", 32, &x);
      Number(jwk, "y", 32, &y);
      if (x.size() != 32 || y.size() != 32) throw std::runtime_error("P-256 coordinates must be 32 bytes");
      const std::string point = std::string(1, '\x04') + x + y;
      static char group[] = "prime256v1";
      if (OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
          OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
        throw std::runtime_error("malformed EC key");
      }
      Params params(OSSL_PARAM_BLD_to_param(build.get()));
      return FromData("EC", params.get());
    }
    throw std::runtime_error("key type \"" + kty.substr(0, 16) + "\" is not RSA or EC");
  }
};

JwksDocument ParseJwks(std::string_view json, std::size_t max_keys, std::size_t max_bytes) {
  if (json.size() > max_bytes) throw std::runtime_error("JWKS larger than " + std::to_string(max_bytes) + " bytes");
  auto document = nlohmann::json::parse(json, nullptr, false);
  if (document.is_discarded() || !document.is_object() || !document.contains("keys") || !document["keys"].is_array()) {
    throw std::runtime_error("not a JWKS (a JSON object with a \"keys\" array)");
  }
  const auto& keys = document["keys"];
  if (keys.size() > max_keys) {
    throw std::runtime_error("JWKS with " + std::to_string(keys.size()) + " keys, more than " + std::to_string(max_keys));
  }
  JwksDocument out;
  std::set<std::string> duplicates;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& jwk = keys[i];
    const std::string where = "keys[" + std::to_string(i) + "]";
    if (!jwk.is_object()) {
      out.skipped.push_back(where + ": not an object");
      continue;
    }
    if (!jwk.contains("kid") || !jwk["kid"].is_string() || jwk["kid"].get<std::string>().empty() ||
        jwk["kid"].get<std::string>().size() > 256) {
      out.skipped.push_back(where + ": no usable kid");
      continue;
    }
    const std::string kid = jwk["kid"].get<std::string>();
    if (jwk.contains("use") && jwk["use"] != "sig") {
      out.skipped.push_back(where + ": not a signing key");
      continue;
    }
    if (jwk.contains("alg") && (!jwk["alg"].is_string() || !ParseJwsAlg(jwk["alg"].get<std::string>()))) {
      out.skipped.push_back(where + ": an algorithm we do not accept");
      continue;
    }
    try {
      PublicKey key = JwkParser::Parse(jwk);
      if (jwk.contains("alg") && !key.Suits(*ParseJwsAlg(jwk["alg"].get<std::string>()))) {
        out.skipped.push_back(where + ": \"alg\" does not match the key type");
        continue;
      }
      // Two keys under one kid: neither is trusted (which one signed would be ambiguous).
      if (!out.keys.emplace(kid, std::move(key)).second) duplicates.insert(kid);
    } catch (const std::exception& e) {
      out.skipped.push_back(where + ": " + e.what());
    }
  }
  for (const auto& kid : duplicates) {
    out.keys.erase(kid);
    out.skipped.push_back("kid used by more than one key");
  }
  return out;
}

KeyPairPem GenerateEcP256KeyPair() {
  auto key = Own(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("EC key generation failed");
  Bio priv(BIO_new(BIO_s_mem())), pub(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ||
      !PEM_write_bio_PUBKEY(pub.get(), key.get())) {
    throw std::runtime_error("PEM encoding failed");
  }
  char* data = nullptr;
  KeyPairPem out;
  long length = BIO_get_mem_data(priv.get(), &data);
  out.private_key_pem.assign(data, static_cast<std::size_t>(length));
  length = BIO_get_mem_data(pub.get(), &data);
  out.public_key_pem.assign(data, static_cast<std::size_t>(length));
  return out;
}

std::string SignCompactJws(const std::string& private_key_pem, JwsAlg alg, const std::string& header_json,
                           const std::string& payload_json) {
  Bio bio(BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  auto key = Own(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("not a PEM private key");
  const std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload_json);
  MdCtx md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!md || EVP_DigestSignInit(md.get(), &pctx, Sha256(), nullptr, key.get()) != 1) {
    throw std::runtime_error("signing failed");
  }
  if (alg == JwsAlg::kPs256 && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
    throw std::runtime_error("signing failed");
  }
  std::size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSign(md.get(), nullptr, &length, data, input.size()) != 1) throw std::runtime_error("signing failed");
  std::string signature(length, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data, input.size()) != 1) {
    throw std::runtime_error("signing failed");
  }
  signature.resize(length);
  if (alg == JwsAlg::kEs256) {
    // DER to R || S.
    const auto* der = reinterpret_cast<const unsigned char*>(signature.data());
    EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(signature.size())));
    if (!sig) throw std::runtime_error("signing failed");
    std::array<unsigned char, 64> raw{};
    BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + 32, 32);
    signature.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
  }
  return input + "." + Base64UrlEncode(signature);
}

std::string PublicKeyJwk(const std::string& public_key_pem, const std::string& kid, const std::string& alg) {
  Bio bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  auto key = Own(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("not a PEM public key");
  nlohmann::json jwk;
  auto bytes = [](const BIGNUM* bn) {
    std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    return Base64UrlEncode(out);
  };
  if (EVP_PKEY_is_a(key.get(), "RSA")) {
    BIGNUM *n = nullptr, *e = nullptr;
    EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, &e);
    Bn own_n(n), own_e(e);
    jwk = {{"kty", "RSA"}, {"n", bytes(n)}, {"e", bytes(e)}};
  } else {
    unsigned char point[65];
    std::size_t length = 0;
    EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &length);
    if (length != 65) throw std::runtime_error("not an uncompressed P-256 key");
    jwk = {{"kty", "EC"},
           {"crv", "P-256"},
           {"x", Base64UrlEncode(std::string_view(reinterpret_cast<char*>(point) + 1, 32))},
           {"y", Base64UrlEncode(std::string_view(reinterpret_cast<char*>(point) + 33, 32))}};
  }
  jwk["kid"] = kid;
  jwk["use"] = "sig";
  if (!alg.empty()) jwk["alg"] = alg;
  return jwk.dump();
}

}  // namespace physio
