// libFuzzer target for the traffic audit's decoder (partner_node/audit/traffic_audit.h): the input
// is a capture file, read as the audit reads one (pcap or pcapng, link layers, IPv4/IPv6, TCP
// reassembly, HTTP/2 frames and HPACK, gRPC messages and trailers, the leak scan and the ledger
// match). Whatever the bytes: AuditCaptures returns a report or a one-line error, never crashes
// or reads out of bounds, and a report that did not pass lists a violation.
//
// The partner is the server on port 7543 (the vendor port the federation captures use), so their
// pcaps (tests/audit/federation) are good seeds; scripts/fuzz.sh copies them in.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "partner_node/audit/traffic_audit.h"

namespace {

using fedface::partner::audit::AuditOptions;
using fedface::partner::audit::GrpcMethodCatalog;
using fedface::partner::audit::LeakPatterns;

struct Fixture {
  std::unique_ptr<GrpcMethodCatalog> catalog =
      GrpcMethodCatalog::FromLinkedProtos(GrpcMethodCatalog::DefaultPackages());
  LeakPatterns patterns;
  std::string path;
  Fixture() {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in string fields is logged
    (void)patterns.AddCanary("FEDFACE-FUZZ-CANARY-7f3a");
    patterns.Seal();
    const char* tmp = std::getenv("TMPDIR");
    path = std::string(tmp != nullptr ? tmp : "/tmp") + "/traffic_audit_fuzz." +
           std::to_string(getpid()) + ".pcap";
  }
};

Fixture& Get() {
  static Fixture* f = new Fixture();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  FILE* out = std::fopen(f.path.c_str(), "wb");
  if (out == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, out) != size) std::abort();
  std::fclose(out);
  AuditOptions options;
  options.partner_port = 7543;
  options.patterns = &f.patterns;
  options.catalog = f.catalog.get();
  options.ledger = fedface::partner::audit::LoadedLedger{};  // empty: every message is unmatched
  const auto report = fedface::partner::audit::AuditCaptures({f.path}, options);
  if (report.ok()) {
    if (!report->passed() && report->violation_count == 0) __builtin_trap();
    (void)fedface::partner::audit::FormatAuditText(*report);
    (void)fedface::partner::audit::FormatAuditJson(*report);
  } else if (report.status().message().find('\n') != std::string::npos) {
    __builtin_trap();
  }
  return 0;
}
