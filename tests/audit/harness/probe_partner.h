// Real traffic for the audit tests: a gRPC server on 127.0.0.1 playing the partner (its replies
// carry whatever the test plants), a plaintext client playing the vendor, and tcpdump capturing
// the loopback traffic between them to a pcap file.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit_probe.grpc.pb.h"

namespace fedface::audit_test {

// How the probe partner answers. Set before the calls; read from gRPC threads.
struct ProbePlan {
  // Fills reply `index` (0-based within the call) of a call; default: sequence and 64 bytes.
  std::function<void(const audittest::ProbeRequest&, int index, audittest::ProbeReply*)> fill;
  // Non-empty: Echo fails with INVALID_ARGUMENT and this message (sent in the trailers).
  std::string error_message;
  // Non-empty: Echo sends this as initial metadata "x-probe-padding" (large values need
  // CONTINUATION frames).
  std::string padding_metadata;
};

class ProbePartner {
 public:
  // Starts the server on 127.0.0.1 with a free port.
  static absl::StatusOr<std::unique_ptr<ProbePartner>> Start(ProbePlan plan);
  ~ProbePartner();

  int port() const { return port_; }
  // Every reply as serialized when sent, in sending order: what a ledger records.
  std::vector<std::string> SentReplies() const;

 private:
  class Service;
  ProbePartner() = default;

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// The vendor's side: a plaintext channel of its own (no shared subchannel), so that destroying
// it closes the TCP connection.
class ProbeVendor {
 public:
  explicit ProbeVendor(int port);
  grpc::Status Echo(const std::string& note, audittest::ProbeReply* reply,
                    const std::string& blob = "");
  grpc::Status Stream(int count, std::vector<audittest::ProbeReply>* replies);
  // Calls a method path that the server does not implement.
  grpc::Status CallUnknownMethod(const std::string& path);
  // Closes the channel (GOAWAY, FIN).
  void Close();

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<audittest::AuditProbe::Stub> stub_;
};

}  // namespace fedface::audit_test
