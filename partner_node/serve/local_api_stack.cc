#include "partner_node/serve/local_api_stack.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "partner_node/enroll/enroller.h"
#include "partner_node/gallery/gallery_store_config.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {

absl::StatusOr<std::unique_ptr<LocalApiStack>> LocalApiStack::Start(
    const Config& config, std::shared_ptr<const LoadedServingModel> model, std::ostream* log) {
  std::unique_ptr<LocalApiStack> stack(new LocalApiStack(config, log));
  if (config.IsSet("gallery.dir")) stack->gallery_dir_ = config.GetPath("gallery.dir");
  const std::string listen = config.GetString("local_api.listen");
  RETURN_IF_ERROR(ValidateLocalListenAddress(listen));
  std::lock_guard<std::mutex> lock(stack->mu_);
  RETURN_IF_ERROR(stack->Open(std::move(model), listen));
  return stack;
}

LocalApiStack::~LocalApiStack() {
  Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

absl::Status LocalApiStack::Open(std::shared_ptr<const LoadedServingModel> model,
                                 const std::string& listen) {
  ASSIGN_OR_RETURN(GalleryStoreSpec spec, GalleryStoreSpecFrom(config_));
  ASSIGN_OR_RETURN(std::unique_ptr<LiveGallery> gallery,
                   LiveGallery::Open(spec, model->version, FaceIndexOptionsFromConfig(config_),
                                     FollowIntervalFromConfig(config_)));
  ASSIGN_OR_RETURN(LocalMatchOptions options,
                   LocalMatchOptionsFromConfig(config_, model->manifest));
  ASSIGN_OR_RETURN(std::unique_ptr<LocalMatchService> service,
                   LocalMatchService::Create(*model->engine, gallery->writer(), options));
  ASSIGN_OR_RETURN(LocalApiListener listener, StartLocalApiListener(listen, *service));
  model_ = std::move(model);
  gallery_ = std::move(gallery);
  service_ = std::move(service);
  server_ = std::move(listener.server);
  address_ = listener.address;
  return absl::OkStatus();
}

absl::Status LocalApiStack::ReembedStale(const std::function<absl::Status(int64_t)>& admit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (gallery_dir_.empty() || reembedded_) return absl::OkStatus();
  EnrollOptions options;
  options.commit_batch_images = static_cast<int>(config_.GetInt("gallery.commit_batch_images"));
  options.before_embedding = admit;
  Enroller enroller(*model_->engine, gallery_->writer(), model_->version);
  ASSIGN_OR_RETURN(EnrollSummary summary, enroller.EnrollFolder(gallery_dir_, options));
  reembedded_ = true;
  ServeLog(log_, absl::StrFormat(
                     "gallery re-embedded with the active model %s: %d image(s) processed, %d "
                     "enrolled, %d failed to enrol, %d removed, %d local-API upload(s) left "
                     "stale, %.1f s",
                     model_->version, summary.processed, summary.enrolled, summary.failed,
                     summary.removed, summary.stale_uploads, summary.seconds));
  return absl::OkStatus();
}

void LocalApiStack::Shutdown(std::chrono::system_clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (server_) server_->Shutdown(deadline);
}

}  // namespace fedface::partner
