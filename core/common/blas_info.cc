#include "core/common/blas_info.h"

#include <dlfcn.h>
#include <link.h>

#include <string>

namespace fedface {
namespace {

// Path of the loaded shared object that provides `symbol`, or "" when none does.
std::string ProviderOf(const char* symbol) {
  void* addr = dlsym(RTLD_DEFAULT, symbol);
  if (addr == nullptr) return "";
  Dl_info info{};
  if (dladdr(addr, &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

}  // namespace

bool OpenBlasInUse() { return dlsym(RTLD_DEFAULT, "openblas_get_config") != nullptr; }

std::string LoadedBlasDescription() {
  using ConfigFn = char* (*)();
  using CoreFn = char* (*)();
  auto config = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  if (config != nullptr) {
    std::string out = config();
    if (auto core = reinterpret_cast<CoreFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) {
      out += std::string(" core=") + core();
    }
    return out + " (" + ProviderOf("cblas_sgemm") + ")";
  }
  std::string path = ProviderOf("cblas_sgemm");
  if (path.empty()) path = ProviderOf("sgemm_");
  if (path.empty()) return "no BLAS loaded";
  return "reference or other BLAS (" + path + "); expect ~14x slower embeddings than OpenBLAS";
}

void SetBlasThreads(int threads) {
  using SetFn = void (*)(int);
  if (auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(threads);
  }
}

}  // namespace fedface
