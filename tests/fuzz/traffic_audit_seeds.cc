// Writes the seed captures of traffic_audit_fuzz (scripts/fuzz.sh runs it at each fuzz run, so
// no capture is committed): RunEvaluation calls to the partner's vendor port 7543 crafted byte by
// byte with the audit harness's crafter (tests/audit/harness/pcap_craft.h), across the link
// types, IPv4 and IPv6, split header blocks, reordered segments, refusal trailers and a leak.
//   traffic_audit_seeds OUT_DIR
#include <pcap/pcap.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/vendor_status.h"
#include "tests/audit/harness/pcap_craft.h"

namespace {

using namespace fedface::audit_test;  // NOLINT: a tool of a few lines

constexpr char kPath[] = "/fedface.v1.EvaluationService/RunEvaluation";

struct Call {
  int linktype = DLT_EN10MB;
  const char* vendor_ip = "127.0.0.1";
  const char* partner_ip = "127.0.0.1";
  size_t header_fragment = 0;
  size_t piece = 1000;
  bool reorder = false;
  int grpc_status = 0;
  std::string grpc_message;
  std::string round_id = "r1";
};

bool Write(const std::string& path, const std::vector<Call>& calls) {
  PcapCrafter pcap(calls.front().linktype);
  uint16_t port = 41000;
  for (const Call& c : calls) {
    fedface::v1::RunEvaluationRequest request;
    request.set_round_id(c.round_id);
    request.set_model_version("1.0.0");
    request.set_protocol(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION);
    request.set_seed(7);
    fedface::v1::EvaluationRelease release;
    release.set_round_id(c.round_id);
    release.set_model_version("1.0.0");
    release.set_protocol(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION);
    release.set_bin_edges_version(1);
    const Http2Exchange x = MakeUnaryExchange(kPath, request.SerializeAsString(),
                                              c.grpc_status == 0 ? release.SerializeAsString() : "",
                                              c.grpc_message, c.header_fragment, c.grpc_status);
    std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, c.piece);
    for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, c.piece)) pieces.push_back(p);
    if (c.reorder) std::reverse(pieces.begin(), pieces.end());
    AddConnection(pcap, MakeEndpoint(c.vendor_ip, port++), MakeEndpoint(c.partner_ip, 7543), pieces,
                  x.client_bytes.size(), x.server_bytes.size());
  }
  const absl::Status s = pcap.Write(path);
  if (!s.ok()) std::cerr << "traffic_audit_seeds: " << path << ": " << s << "\n";
  return s.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: traffic_audit_seeds OUT_DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = Write(dir + "/seed-one-call.pcap", {Call{}});
  ok &= Write(dir + "/seed-sll2-ipv6-fragments.pcap", {Call{.linktype = DLT_LINUX_SLL2,
                                                            .vendor_ip = "::1",
                                                            .partner_ip = "::1",
                                                            .header_fragment = 9,
                                                            .piece = 37}});
  ok &= Write(dir + "/seed-raw-reordered.pcap", {Call{.linktype = DLT_RAW, .reorder = true}});
  ok &=
      Write(dir + "/seed-refusals.pcap",
            {Call{}, Call{.grpc_status = 9, .grpc_message = "held for approval", .round_id = "r2"},
             Call{.grpc_status = 8,
                  .grpc_message = "privacy%20budget%20exhausted%20for%20this%20vendor",
                  .round_id = "r3"}});
  // A vendor beyond its rate limit: the same fixed trailer on every refused call.
  std::vector<Call> limited = {Call{}};
  for (int i = 0; i < 4; ++i) {
    limited.push_back(Call{.grpc_status = 8, .grpc_message = fedface::partner::kRateLimitedText});
  }
  ok &= Write(dir + "/seed-rate-limited.pcap", limited);
  ok &= Write(dir + "/seed-canary-leak.pcap",
              {Call{.linktype = DLT_LINUX_SLL, .round_id = "FEDFACE-FUZZ-CANARY-7f3a"}});
  return ok ? 0 : 1;
}
