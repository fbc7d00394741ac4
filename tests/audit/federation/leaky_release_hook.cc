// The fault that partner_node_leaky (a TEST-ONLY build of partner_node/main.cc) carries: before
// each release goes to the vendor, the bytes of one stored embedding are appended to it as an
// unknown protobuf field (number 99, length-delimited), exactly what a careless "debug field"
// would do. The traffic audit must catch it; that is the negative control of the audit tests.
//
// Which embedding: the first row (lowest id) of the gallery store named by the environment
// variable FEDFACE_LEAKY_GALLERY_DB. Without it, or when the store cannot be read, nothing is
// appended and a line on stderr says why (the test then fails: the audit finds nothing).
#include <cstdlib>
#include <iostream>
#include <string>

#include "partner_node/audit/audit_inputs.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/serve/egress_fault_hook.h"

namespace fedface::audit_test {
namespace {

constexpr int kLeakFieldNumber = 99;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void AppendOneStoredEmbedding(std::string* vendor_bound_bytes) {
  const char* db = std::getenv("FEDFACE_LEAKY_GALLERY_DB");
  if (db == nullptr || *db == '\0') {
    std::cerr << "partner_node_leaky: FEDFACE_LEAKY_GALLERY_DB is not set; nothing leaked\n";
    return;
  }
  auto store = partner::OpenGalleryStore(partner::SqliteGallerySpec(db, /*must_exist=*/true));
  auto rows = store.ok() ? partner::audit::LoadStoredEmbeddings(**store)
                         : absl::StatusOr<std::vector<partner::audit::StoredBytes>>(store.status());
  if (!rows.ok() || rows->empty()) {
    std::cerr << "partner_node_leaky: no embedding to leak from " << db << "\n";
    return;
  }
  const partner::audit::StoredBytes& leaked = rows->front();
  AppendVarint((uint64_t{kLeakFieldNumber} << 3) | 2, vendor_bound_bytes);  // length-delimited
  AppendVarint(leaked.bytes.size(), vendor_bound_bytes);
  vendor_bound_bytes->append(leaked.bytes);
  std::cerr << "partner_node_leaky: appended the " << leaked.bytes.size() << " bytes of "
            << leaked.label << " to a release as field " << kLeakFieldNumber << std::endl;
}

// Installed before main() runs; this translation unit is linked into partner_node_leaky only.
[[maybe_unused]] const bool kInstalled = [] {
  partner::egress_fault_hook_for_tests = &AppendOneStoredEmbedding;
  return true;
}();

}  // namespace
}  // namespace fedface::audit_test
