// The local match API inside `partner_node serve`: the live gallery (its own store connection and
// the FAISS index of the active model version), LocalMatchService and the local listener
// (StartLocalApiListener: a grpc::Server of its own, never the vendor-facing one).
//
// It is bound to ONE model version, the active one the process started with, for the life of
// the process: no vendor round changes its model, its index or its address (a round naming
// another version is evaluated apart, see evaluation_galleries.h). After the partner activates
// another version (`partner_node models activate`), a restart of `serve` brings it here.
//
// ReembedStale re-embeds, once per process, what the gallery store holds under other versions
// (after an activation: the files of gallery.dir, with the Enroller and the active engine; the
// index follows every commit). Without gallery.dir nothing can be re-embedded (CanReembed() is
// false); local-API uploads have no file behind them and must be enrolled again through the API
// after a model change.
//
// Thread safety: ReembedStale and Shutdown are serialised; address() is stable after Start.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "partner_node/enroll/live_gallery.h"
#include "partner_node/local_api/local_api_listener.h"
#include "partner_node/local_api/local_match_service.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {

class LocalApiStack {
 public:
  // Starts the local API for `model` on local_api.listen. Errors name the address or file.
  static absl::StatusOr<std::unique_ptr<LocalApiStack>> Start(
      const Config& config, std::shared_ptr<const LoadedServingModel> model, std::ostream* log);
  ~LocalApiStack();
  LocalApiStack(const LocalApiStack&) = delete;
  LocalApiStack& operator=(const LocalApiStack&) = delete;

  // As bound: "127.0.0.1:40123" or "unix:/path".
  const std::string& address() const { return address_; }
  bool CanReembed() const { return !gallery_dir_.empty(); }

  // See above. `admit` (may be empty) is asked before any image is embedded; its refusal is
  // returned as is and the run is tried again by a later call. Other errors are for the
  // partner's log.
  absl::Status ReembedStale(const std::function<absl::Status(int64_t)>& admit);

  // Stops the listener (pending calls get until `deadline`).
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  LocalApiStack(Config config, std::ostream* log) : config_(std::move(config)), log_(log) {}
  absl::Status Open(std::shared_ptr<const LoadedServingModel> model, const std::string& listen);

  const Config config_;
  std::ostream* const log_;
  std::string gallery_dir_;  // "" when gallery.dir is not set
  std::string address_;
  std::mutex mu_;
  std::shared_ptr<const LoadedServingModel> model_;
  std::unique_ptr<LiveGallery> gallery_;
  std::unique_ptr<LocalMatchService> service_;
  std::unique_ptr<RecoveringServer> server_;
  bool reembedded_ = false;  // for model_'s version
};

}  // namespace fedface::partner
