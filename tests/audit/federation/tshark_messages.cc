#include "tests/audit/federation/tshark_messages.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/common/sha256.h"
#include "partner_node/audit/tls_key_log.h"
#include "tests/support/child_process.h"
#include "tests/support/test_env.h"

namespace fedface::audit_test {
namespace {

using Json = nlohmann::ordered_json;

// "0a:1b:..." -> bytes.
std::string FromColonHex(const std::string& text) {
  return absl::HexStringToBytes(absl::StrReplaceAll(text, {{":", ""}}));
}

// Every value of `key` in `node`, depth first, in document order.
void Collect(const Json& node, const std::string& key, std::vector<const Json*>* out) {
  if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == key) {
        if (it.value().is_array()) {
          for (const Json& v : it.value()) out->push_back(&v);
        } else {
          out->push_back(&it.value());
        }
      } else {
        Collect(it.value(), key, out);
      }
    }
  } else if (node.is_array()) {
    for (const Json& v : node) Collect(v, key, out);
  }
}

// Every decoded field (an object with a name and a value) under `node`.
void CollectFields(const Json& node, std::map<std::string, std::string>* out) {
  if (node.is_object()) {
    const auto name = node.find("protobuf.field.name");
    const auto value = node.find("protobuf.field.value");
    if (name != node.end() && value != node.end() && name->is_string() && value->is_string()) {
      (*out)[name->get<std::string>()] = value->get<std::string>();
    }
    for (const Json& v : node) CollectFields(v, out);
  } else if (node.is_array()) {
    for (const Json& v : node) CollectFields(v, out);
  }
}

std::string First(const Json& node, const std::string& key) {
  std::vector<const Json*> values;
  Collect(node, key, &values);
  return values.empty() || !values.front()->is_string() ? "" : values.front()->get<std::string>();
}

}  // namespace

std::string TsharkBinary() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path ? path : "/usr/bin:/bin", ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/tshark");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

absl::StatusOr<std::vector<TsharkMessage>> TsharkGrpcMessages(const std::string& pcap,
                                                              const std::string& key_log,
                                                              const std::string& work_dir) {
  const std::string tshark = TsharkBinary();
  if (tshark.empty()) return absl::UnavailableError("tshark is not installed");
  std::vector<std::string> argv = {tshark, "-n", "-r", pcap};
  if (!key_log.empty()) {
    const std::string normalized = absl::StrCat(work_dir, "/tshark-keylog-", getpid(), ".txt");
    testing::WriteText(normalized,
                       partner::audit::NormalizeKeyLogLineEndings(testing::ReadText(key_log)));
    argv.push_back("-o");
    argv.push_back("tls.keylog_file:" + normalized);
  }
  argv.push_back("-o");
  argv.push_back(absl::StrCat("uat:protobuf_search_paths:\"", testing::Env("FEDFACE_SOURCE_DIR"),
                              "/proto\",\"TRUE\""));
  for (const char* a : {"-Y", "grpc", "-T", "json", "--no-duplicate-keys"}) argv.push_back(a);
  const testing::ProcessResult r = testing::RunProcess(argv, work_dir);
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("tshark ended with ", r.exit_code, ": ", r.err));
  }
  Json packets = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (packets.is_discarded() || !packets.is_array()) {
    return absl::InternalError("tshark's JSON output does not parse");
  }
  std::vector<TsharkMessage> out;
  for (const Json& packet : packets) {
    const Json& layers = packet["_source"]["layers"];
    const int src = std::atoi(First(layers["tcp"], "tcp.srcport").c_str());
    const int dst = std::atoi(First(layers["tcp"], "tcp.dstport").c_str());
    // One "grpc" and one "protobuf" layer per message (arrays when a frame holds several).
    std::vector<const Json*> grpc;
    std::vector<const Json*> protobuf;
    Collect(layers, "grpc", &grpc);
    Collect(layers, "protobuf", &protobuf);
    for (size_t i = 0; i < grpc.size(); ++i) {
      TsharkMessage m;
      m.src_port = src;
      m.dst_port = dst;
      const std::string data = FromColonHex(First(*grpc[i], "grpc.message_data"));
      m.length = std::strtoull(First(*grpc[i], "grpc.message_length").c_str(), nullptr, 10);
      m.sha256 = Sha256Hex(data);
      m.data = data;
      // The top-level message's name comes first; nested messages follow inside it.
      if (grpc.size() == protobuf.size()) {
        m.type = First(*protobuf[i], "protobuf.message.name");
        CollectFields(*protobuf[i], &m.fields);
      }
      out.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace fedface::audit_test
