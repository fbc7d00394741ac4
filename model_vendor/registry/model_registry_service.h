// The vendor's ModelRegistry gRPC service (proto/fedface/v1/model_registry.proto) over a
// RegistryFolder. Runs behind mutual TLS: every call first identifies the partner by the name
// in its verified client certificate and refuses names outside the allowlist
// (PERMISSION_DENIED), or connections without a certificate (UNAUTHENTICATED).
//
// Every DownloadWeights is logged with the partner's name, the version, where it started and
// how it ended. The server never sends more than the file holds and never a chunk above
// chunk_bytes (<= 1 MiB).
//
// Thread safety: the service is called from gRPC's thread pool; it holds no mutable state
// besides the log, which is locked.
#pragma once

#include <cstdint>
#include <mutex>
#include <ostream>
#include <set>
#include <string>

#include "fedface/v1/model_registry.grpc.pb.h"
#include "model_vendor/registry/registry_folder.h"

namespace fedface::vendor {

struct RegistryServiceOptions {
  std::set<std::string> allowed_partners;
  uint64_t max_weights_bytes = 0;
  uint32_t chunk_bytes = 1 << 20;        // 1 KiB .. 1 MiB
  uint32_t test_delay_per_chunk_ms = 0;  // tests only: slow link simulation
};

class ModelRegistryService final : public fedface::v1::ModelRegistry::Service {
 public:
  // `log` receives one line per event; it must outlive the service.
  ModelRegistryService(RegistryFolder folder, RegistryServiceOptions options, std::ostream* log);

  grpc::Status ListModels(grpc::ServerContext* context,
                          const fedface::v1::ListModelsRequest* request,
                          fedface::v1::ListModelsResponse* response) override;
  grpc::Status GetManifest(grpc::ServerContext* context,
                           const fedface::v1::GetManifestRequest* request,
                           fedface::v1::GetManifestResponse* response) override;
  grpc::Status DownloadWeights(grpc::ServerContext* context,
                               const fedface::v1::DownloadWeightsRequest* request,
                               grpc::ServerWriter<fedface::v1::WeightsChunk>* writer) override;

 private:
  // The allowed partner's name, or a PERMISSION_DENIED/UNAUTHENTICATED status (logged).
  grpc::Status Identify(grpc::ServerContext* context, const char* rpc, std::string* partner);
  void Log(const std::string& line);

  RegistryFolder folder_;
  RegistryServiceOptions options_;
  std::mutex log_mu_;
  std::ostream* log_;
};

}  // namespace fedface::vendor
