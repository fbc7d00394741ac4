// The local match API inside `partner_node serve`: the live gallery (its own store connection and
// the FAISS index of the loaded model version), LocalMatchService and the local listener
// (StartLocalApiListener: a grpc::Server of its own, never the vendor-facing one).
//
// It is bound to ONE model version. Follow(model) brings it to `model`:
//   - same version: re-embeds, once per version, what the gallery holds under other versions
//     (the files of gallery.dir, with the Enroller; the index follows every commit);
//   - another version (a vendor round made it active): stops the local listener, opens the live
//     gallery for the new version, re-embeds gallery.dir with the new engine, and starts the
//     listener again on the address it had (local applications see UNAVAILABLE meanwhile).
// Without gallery.dir nothing can be re-embedded (CanReembed() is false); local-API uploads have
// no file behind them and must be enrolled again through the API after a model change.
//
// Thread safety: Follow and Shutdown are serialised; address() is stable after Start.
#pragma once

#include <chrono>
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

  // See above. Errors are for the partner's log.
  absl::Status Follow(std::shared_ptr<const LoadedServingModel> model);

  // Stops the listener (pending calls get until `deadline`).
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  LocalApiStack(Config config, std::ostream* log) : config_(std::move(config)), log_(log) {}
  absl::Status Open(std::shared_ptr<const LoadedServingModel> model, const std::string& listen);
  absl::Status Reembed();

  const Config config_;
  std::ostream* const log_;
  std::string gallery_dir_;  // "" when gallery.dir is not set
  std::string address_;
  std::mutex mu_;
  std::shared_ptr<const LoadedServingModel> model_;
  std::unique_ptr<LiveGallery> gallery_;
  std::unique_ptr<LocalMatchService> service_;
  std::unique_ptr<grpc::Server> server_;
  bool reembedded_ = false;  // for model_'s version
};

}  // namespace fedface::partner
