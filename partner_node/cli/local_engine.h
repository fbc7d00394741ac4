// What the local commands (detect, compare, evaluate) share: the engine flags and loading a
// verified model package against the partner's pinned vendor key.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "core/common/cli_args.h"
#include "core/engine/face_engine.h"
#include "core/package/model_manifest.h"

namespace fedface::partner {

// Flags every local command accepts, with their help text.
const std::set<std::string>& EngineValueFlags();
const std::set<std::string>& EngineSwitchFlags();
extern const char kEngineFlagsHelp[];

struct LocalEngine {
  std::unique_ptr<FaceEngine> engine;
  ModelManifest manifest;  // meaningful when a model was loaded
  bool has_model = false;
  float self_test_max_distance = 0;
};

// Builds the engine from the flags. With `need_model`, --model PKG is required and must verify
// against the pinned key (--vendor-key or $FEDFACE_VENDOR_KEY) and pass its self-test;
// otherwise a given --model is still verified. Errors name the flag or file and the reason.
absl::StatusOr<LocalEngine> LoadLocalEngine(const CliArgs& args, bool need_model);

}  // namespace fedface::partner
