#include "partner_node/serve/evaluation_service.h"

#include "absl/strings/str_cat.h"
#include "core/config/peer_identity.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/serve/egress_fault_hook.h"
#include "partner_node/serve/serve_config.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {
namespace {

// Most identical requests that may wait for one evaluation.
constexpr size_t kMaxCallsPerFlight = 64;

grpc::Status ToGrpc(const absl::Status& sent) {
  return grpc::Status(static_cast<grpc::StatusCode>(sent.code()), std::string(sent.message()));
}

// The request's bytes, at most kMaxVendorRequestBytes (the server enforces it as well).
bool ReadRequest(const grpc::ByteBuffer& buffer, std::string* out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  for (const grpc::Slice& s : slices) {
    if (out->size() + s.size() > static_cast<size_t>(kMaxVendorRequestBytes)) return false;
    out->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return true;
}

}  // namespace

EvaluationServiceImpl::EvaluationServiceImpl(EvaluationServiceOptions options,
                                             EvaluationRounds* rounds, std::ostream* log)
    : options_(std::move(options)),
      rounds_(rounds),
      log_(log),
      messageless_([this](const std::string& vendor, grpc::ServerUnaryReactor* reactor) {
        reactor->Finish(ToGrpc(rounds_->Refuse(
            vendor, "", absl::InvalidArgumentError("the call carries no request message"))));
      }) {
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
}

EvaluationServiceImpl::~EvaluationServiceImpl() { Stop(); }

void EvaluationServiceImpl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  messageless_.Stop();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

grpc::ServerUnaryReactor* EvaluationServiceImpl::RunEvaluation(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Every refusal is built and recorded by the egress guard (through rounds_).
  std::string vendor = options_.plaintext_vendor;
  std::string round_id;
  auto refuse = [&](grpc::StatusCode code, const std::string& message) {
    reactor->Finish(ToGrpc(rounds_->Refuse(
        vendor, round_id, absl::Status(static_cast<absl::StatusCode>(code), message))));
    return reactor;
  };

  // Who is calling.
  if (vendor.empty()) {
    // A verified certificate issued for clientAuth: a server certificate cannot call.
    std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
    absl::StatusOr<std::string> name =
        auth ? AuthenticatedClientName(*auth)
             : absl::UnauthenticatedError("a client certificate is required");
    if (!name.ok()) {
      ServeLog(log_, absl::StrCat("refused RunEvaluation from ", context->peer(), ": ",
                                  name.status().message()));
      return refuse(static_cast<grpc::StatusCode>(name.status().code()),
                    std::string(name.status().message()));
    }
    vendor = *name;
    if (!options_.allowed_vendors.count(vendor)) {
      ServeLog(log_, absl::StrCat("refused RunEvaluation from vendor '", vendor, "' (",
                                  context->peer(), "): not in vendor_api.allowed_vendors"));
      return refuse(grpc::StatusCode::PERMISSION_DENIED,
                    absl::StrCat("vendor '", vendor, "' is not allowed"));
    }
  }

  // No message at all: an HTTP/2 rapid reset (HEADERS then RST_STREAM) or a half-close without
  // one. Parked until the reset shows (then no work, nothing sent, no ledger row); each used to
  // cost a ledgered refusal, and gRPC queued 100k reset streams behind those writes (1.9 GB).
  // Before the rate limit, so that a reset stream never takes a window's first refusal (its
  // ledger row), whose trailer the audit expects on the wire.
  if (!request_bytes->Valid()) {
    messageless_.Add(vendor, context, reactor);
    return reactor;
  }
  // The vendor's call rate (its own count and the time, no partner data): malformed calls
  // count too.
  if (absl::Status s = rounds_->RateLimited(vendor, RateLimitKind::kRequests); !s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }

  // What it asks for.
  std::string bytes;
  auto flight = std::make_shared<Flight>();
  if (!ReadRequest(*request_bytes, &bytes) || !flight->request.ParseFromString(bytes)) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "the request is not a RunEvaluationRequest");
  }
  round_id = flight->request.round_id();
  if (absl::Status s = CheckRequest(flight->request); !s.ok()) {
    return refuse(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
  }
  flight->vendor = vendor;
  flight->request_hash = RequestHash(flight->request);
  const Call call{context, reactor, response, context->deadline()};

  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return refuse(grpc::StatusCode::UNAVAILABLE, "the partner is shutting down");
  const FlightKey key{vendor, flight->request.round_id()};
  if (auto it = flights_.find(key); it != flights_.end()) {
    Flight& running = *it->second;
    if (running.request_hash != flight->request_hash) {
      return refuse(
          grpc::StatusCode::ALREADY_EXISTS,
          absl::StrCat("round_id '", key.second, "' is being evaluated for a different request"));
    }
    if (running.calls.size() >= kMaxCallsPerFlight) {
      return refuse(grpc::StatusCode::UNAVAILABLE, "too many identical requests; retry later");
    }
    running.calls.push_back(call);  // answered with the same release
    return reactor;
  }
  if (queue_.size() >= static_cast<size_t>(std::max(1, options_.workers))) {
    return refuse(grpc::StatusCode::UNAVAILABLE,
                  "the partner is busy with other evaluations; retry later");
  }
  flight->calls.push_back(call);
  flights_[key] = flight;
  queue_.push_back(flight);
  wake_.notify_one();
  return reactor;
}

absl::Status EvaluationServiceImpl::Interrupted(const Flight& flight) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("the partner is shutting down; retry later");
  const auto now = std::chrono::system_clock::now();
  for (const Call& c : flight.calls) {
    if (!c.context->IsCancelled() && c.deadline > now) return absl::OkStatus();
  }
  return absl::DeadlineExceededError("every caller of this round gave up; nothing was charged");
}

void EvaluationServiceImpl::Finish(const Call& call, const absl::StatusOr<std::string>& result) {
  if (!result.ok()) {
    call.reactor->Finish(ToGrpc(result.status()));  // already the guard's (EvaluationRounds)
    return;
  }
  // The exact bytes, as one slice: gRPC frames them unchanged (no compression is configured).
  // WithEgressFault: identity in partner_node; only the audit test binary rewrites (see header).
  grpc::Slice slice(WithEgressFault(*result));
  grpc::ByteBuffer buffer(&slice, 1);
  call.response->Swap(&buffer);
  call.reactor->Finish(grpc::Status::OK);
}

void EvaluationServiceImpl::Work() {
  while (true) {
    std::shared_ptr<Flight> flight;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      flight = queue_.front();
      queue_.pop_front();
      stopping = stopping_;
    }
    // A flight whose callers all gave up while it waited in the queue is not started.
    absl::Status waited = stopping
                              ? absl::UnavailableError("the partner is shutting down; retry later")
                              : Interrupted(*flight);
    absl::StatusOr<std::string> result =
        !waited.ok() ? absl::StatusOr<std::string>(
                           rounds_->Refuse(flight->vendor, flight->request.round_id(), waited))
                     : rounds_->Answer(flight->vendor, flight->request,
                                       [&] { return Interrupted(*flight); });
    std::vector<Call> calls;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const FlightKey key{flight->vendor, flight->request.round_id()};
      if (auto it = flights_.find(key); it != flights_.end() && it->second == flight) {
        flights_.erase(it);
      }
      calls.swap(flight->calls);  // nobody joins this flight any more
    }
    for (size_t i = 0; i < calls.size(); ++i) {
      // The first caller gets the answer itself; each other one a recorded re-send of it.
      if (i == 0) {
        Finish(calls[i], result);
      } else if (result.ok()) {
        Finish(calls[i], rounds_->AnswerAgain(flight->vendor, flight->request));
      } else {
        Finish(calls[i],
               rounds_->Refuse(flight->vendor, flight->request.round_id(), result.status()));
      }
    }
  }
}

}  // namespace fedface::partner
