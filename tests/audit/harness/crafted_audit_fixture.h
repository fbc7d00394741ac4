// What the audit tests over crafted captures share: a folder for the pcaps, the probe service's
// catalog, one canary to search for, and the audit of a capture as the partner listening on
// kCraftedPartnerPort (only fedface.audittest.ProbeReply may leave it).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "partner_node/audit/traffic_audit.h"
#include "tests/support/test_env.h"

namespace fedface::audit_test {

inline constexpr char kCraftedEchoPath[] = "/fedface.audittest.AuditProbe/Echo";
inline constexpr uint16_t kCraftedPartnerPort = 50051;

class CraftedAudit {
 protected:
  // Call from SetUp.
  void PrepareAudit(const std::string& folder_prefix, const std::string& canary) {
    dir_ = testing::MakeTempDir(folder_prefix);
    ASSERT_FALSE(dir_.empty());
    catalog_ = partner::audit::GrpcMethodCatalog::FromLinkedProtos({"fedface.audittest"});
    ASSERT_NE(catalog_->Find(kCraftedEchoPath), nullptr);
    ASSERT_TRUE(patterns_.AddCanary(canary).ok());
    patterns_.Seal();
  }

  partner::audit::AuditReport AuditFile(const std::string& path,
                                        const partner::audit::TlsKeyLog* keys = nullptr) {
    partner::audit::AuditOptions options;
    options.partner_port = kCraftedPartnerPort;
    options.patterns = &patterns_;
    options.catalog = catalog_.get();
    options.allowed_types = std::set<std::string>{"fedface.audittest.ProbeReply"};
    options.tls_keys = keys;
    auto report = partner::audit::AuditCaptures({path}, options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : partner::audit::AuditReport{};
  }

  static int Count(const partner::audit::AuditReport& r, partner::audit::ViolationKind kind) {
    return static_cast<int>(std::count_if(r.violations.begin(), r.violations.end(),
                                          [&](const auto& v) { return v.kind == kind; }));
  }

  std::string dir_;
  std::unique_ptr<partner::audit::GrpcMethodCatalog> catalog_;
  partner::audit::LeakPatterns patterns_;
};

}  // namespace fedface::audit_test
