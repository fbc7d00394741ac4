// The vendor-facing gRPC service: fedface.v1.EvaluationService, and nothing else, on the
// vendor listener of `partner_node serve`.
//
// Wire handling: the method is registered RAW (grpc::ByteBuffer in and out), so the response's
// payload is exactly the byte string EvaluationRounds returns, i.e. the bytes the egress guard
// serialized and whose sha256 the egress ledger recorded; nothing re-serializes it (the server
// sends uncompressed messages). The request is parsed from its bytes and checked by the guard.
// (The one exception is the traffic audit's negative-control test binary, which installs
// egress_fault_hook.h's hook; partner_node never does.)
//
// Who is calling: with mutual TLS, the CN (or first SAN) of the verified client certificate,
// which must be in the allowlist (else PERMISSION_DENIED; no certificate: UNAUTHENTICATED).
// Without TLS (audit tests on a private link), every caller is the one configured vendor.
//
// Refusals: every non-OK status this service sends (malformed request, unknown caller, busy,
// shutting down, and whatever the round's guard decides) is built by the egress guard
// (EgressGuard::Refuse through EvaluationRounds::Refuse): a catalogue text, recorded in the
// ledger before it is sent. Only gRPC's own refusals (an oversized or compressed message, a
// failed handshake) never reach this code; they carry no partner data.
//
// Rate limits: every authenticated, well-formed call counts toward the vendor's requests per
// window (vendor_rate_limiter.h); beyond it RESOURCE_EXHAUSTED with the fixed rate-limit text,
// recorded in the ledger once per window rather than per call.
//
// Work: requests run on `workers` threads of their own (not gRPC's callback threads), with a
// queue of the same size; beyond that, UNAVAILABLE ("busy, retry"). Identical concurrent
// requests (same vendor, round_id and request) share one evaluation, so the budget is charged
// once; every one of them is sent the same bytes and each send is recorded in the ledger. A
// request is interrupted (nothing charged) when every caller waiting for it has gone past its
// deadline or cancelled, or at shutdown.
//
// Thread safety: gRPC calls RunEvaluation from its threads; Stop from any thread, once.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fedface/v1/evaluation.grpc.pb.h"
#include "partner_node/serve/evaluation_rounds.h"
#include "partner_node/serve/messageless_calls.h"

namespace fedface::partner {

struct EvaluationServiceOptions {
  std::set<std::string> allowed_vendors;
  // Non-empty: no TLS; every caller is this vendor.
  std::string plaintext_vendor;
  int workers = 2;
};

class EvaluationServiceImpl final
    : public fedface::v1::EvaluationService::WithRawCallbackMethod_RunEvaluation<
          fedface::v1::EvaluationService::Service> {
 public:
  // `rounds` must outlive this service. `log` may be null.
  EvaluationServiceImpl(EvaluationServiceOptions options, EvaluationRounds* rounds,
                        std::ostream* log);
  ~EvaluationServiceImpl() override;  // Stop()s
  EvaluationServiceImpl(const EvaluationServiceImpl&) = delete;
  EvaluationServiceImpl& operator=(const EvaluationServiceImpl&) = delete;

  grpc::ServerUnaryReactor* RunEvaluation(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;

  // Refuses new requests (UNAVAILABLE), interrupts running ones, answers every waiting call and
  // joins the workers. Call before grpc::Server::Shutdown so no call is left unanswered.
  void Stop();

 private:
  struct Call {
    grpc::CallbackServerContext* context;
    grpc::ServerUnaryReactor* reactor;
    grpc::ByteBuffer* response;
    std::chrono::system_clock::time_point deadline;
  };
  // One evaluation shared by the identical requests waiting for it.
  struct Flight {
    std::string vendor;
    fedface::v1::RunEvaluationRequest request;
    std::string request_hash;
    std::vector<Call> calls;
  };
  using FlightKey = std::pair<std::string, std::string>;  // vendor, round_id

  void Work();
  absl::Status Interrupted(const Flight& flight);
  void Finish(const Call& call, const absl::StatusOr<std::string>& result);

  const EvaluationServiceOptions options_;
  EvaluationRounds* const rounds_;
  std::ostream* const log_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<std::shared_ptr<Flight>> queue_;
  std::map<FlightKey, std::shared_ptr<Flight>> flights_;  // queued or running
  std::vector<std::thread> workers_;
  MessagelessCalls messageless_;  // after rounds_: its refusals go through them
};

}  // namespace fedface::partner
