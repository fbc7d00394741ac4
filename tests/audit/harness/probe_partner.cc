#include "tests/audit/harness/probe_partner.h"

#include <fcntl.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace fedface::audit_test {

using audittest::ProbeReply;
using audittest::ProbeRequest;

class ProbePartner::Service final : public audittest::AuditProbe::Service {
 public:
  explicit Service(ProbePlan plan) : plan_(std::move(plan)) {}

  grpc::Status Echo(grpc::ServerContext* context, const ProbeRequest* request,
                    ProbeReply* reply) override {
    if (!plan_.padding_metadata.empty()) {
      context->AddInitialMetadata("x-probe-padding", plan_.padding_metadata);
    }
    if (!plan_.error_message.empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, plan_.error_message);
    }
    Fill(*request, 0, reply);
    Record(*reply);
    return grpc::Status::OK;
  }

  grpc::Status Stream(grpc::ServerContext*, const ProbeRequest* request,
                      grpc::ServerWriter<ProbeReply>* writer) override {
    for (uint32_t i = 0; i < request->count(); ++i) {
      ProbeReply reply;
      Fill(*request, static_cast<int>(i), &reply);
      Record(reply);
      if (!writer->Write(reply)) break;
    }
    return grpc::Status::OK;
  }

  std::vector<std::string> Sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }

 private:
  void Fill(const ProbeRequest& request, int index, ProbeReply* reply) const {
    if (plan_.fill) {
      plan_.fill(request, index, reply);
      return;
    }
    reply->set_sequence(static_cast<uint64_t>(index));
    reply->set_payload(std::string(64, static_cast<char>('a' + index % 26)));
  }
  void Record(const ProbeReply& reply) {
    std::lock_guard<std::mutex> lock(mu_);
    sent_.push_back(reply.SerializeAsString());
  }

  const ProbePlan plan_;
  mutable std::mutex mu_;
  std::vector<std::string> sent_;
};

absl::StatusOr<std::unique_ptr<ProbePartner>> ProbePartner::Start(ProbePlan plan) {
  std::unique_ptr<ProbePartner> p(new ProbePartner());
  p->service_ = std::make_unique<Service>(std::move(plan));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &p->port_);
  builder.RegisterService(p->service_.get());
  p->server_ = builder.BuildAndStart();
  if (!p->server_ || p->port_ == 0) {
    return absl::UnavailableError("the probe partner could not listen on 127.0.0.1");
  }
  return p;
}

ProbePartner::~ProbePartner() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

std::vector<std::string> ProbePartner::SentReplies() const { return service_->Sent(); }

ProbeVendor::ProbeVendor(int port) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  args.SetInt("grpc.max_metadata_size", 1 << 20);  // room for the large-header test
  channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials(), args);
  stub_ = audittest::AuditProbe::NewStub(channel_);
}

grpc::Status ProbeVendor::Echo(const std::string& note, ProbeReply* reply,
                               const std::string& blob) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ProbeRequest request;
  request.set_note(note);
  request.set_blob(blob);
  return stub_->Echo(&context, request, reply);
}

grpc::Status ProbeVendor::Stream(int count, std::vector<ProbeReply>* replies) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ProbeRequest request;
  request.set_count(static_cast<uint32_t>(count));
  auto reader = stub_->Stream(&context, request);
  ProbeReply reply;
  while (reader->Read(&reply)) replies->push_back(reply);
  return reader->Finish();
}

grpc::Status ProbeVendor::CallUnknownMethod(const std::string& path) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::internal::RpcMethod method(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC);
  ProbeRequest request;
  request.set_note("who is there");
  ProbeReply reply;
  return grpc::internal::BlockingUnaryCall(channel_.get(), method, &context, request, &reply);
}

void ProbeVendor::Close() {
  stub_.reset();
  channel_.reset();
}

}  // namespace fedface::audit_test
