// `model_vendor keygen --out KEY [--force]`: the vendor's Ed25519 signing key pair.
#include <iostream>
#include <string>
#include <vector>

#include "core/common/cli_args.h"
#include "core/package/ed25519.h"
#include "model_vendor/cli/command.h"

namespace fedface::vendor {
namespace {

constexpr char kUsage[] =
    "usage: model_vendor keygen --out KEY [--force]\n"
    "\n"
    "Makes an Ed25519 key pair for signing model packages:\n"
    "  KEY      the private key (PEM PKCS#8, mode 0600); keep it secret\n"
    "  KEY.pub  the public key (PEM); partners pin this file\n"
    "Prints the key id (first 16 hex characters of sha256 of the raw public key).\n"
    "\n"
    "  --out KEY  where to write the private key (required)\n"
    "  --force    overwrite an existing KEY / KEY.pub\n";

}  // namespace

int RunKeygen(const std::vector<std::string>& args) {
  auto parsed = CliArgs::Parse(args, {"out"}, {"force", "help"});
  if (!parsed.ok()) {
    std::cerr << "model_vendor keygen: " << parsed.status().message() << "\n" << kUsage;
    return 2;
  }
  if (parsed->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (!parsed->positionals().empty()) {
    std::cerr << "model_vendor keygen: unexpected argument '" << parsed->positionals()[0] << "'\n"
              << kUsage;
    return 2;
  }
  auto out = parsed->Require("out");
  if (!out.ok() || out->empty()) {
    std::cerr << "model_vendor keygen: --out is required\n" << kUsage;
    return 2;
  }
  auto key = Ed25519PrivateKey::Generate();
  if (!key.ok()) {
    std::cerr << "model_vendor keygen: " << key.status().message() << "\n";
    return 1;
  }
  if (absl::Status st = WriteKeyPair(*key, *out, parsed->Has("force")); !st.ok()) {
    std::cerr << "model_vendor keygen: " << st.message() << "\n";
    return 1;
  }
  std::cout << "private key: " << *out << " (mode 0600; keep it secret)\n"
            << "public key:  " << *out << ".pub (partners pin this file)\n"
            << "key id:      " << key->key_id() << "\n";
  return 0;
}

}  // namespace fedface::vendor
