// Every configuration key of both processes is documented in docs/configuration.md, so the
// document cannot fall behind the code (the --help text is generated from the same schemas).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "model_vendor/cli/vendor_config.h"
#include "partner_node/cli/partner_config.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

std::string ReadDoc() {
  std::ifstream in(testing::Env("FEDFACE_SOURCE_DIR") + "/docs/configuration.md");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ConfigurationDocTest, DocumentsEveryVendorAndPartnerKey) {
  const std::string doc = ReadDoc();
  ASSERT_FALSE(doc.empty()) << "docs/configuration.md is missing";
  for (const ConfigSchema& schema :
       {vendor::VendorConfigSchema(), partner::PartnerConfigSchema()}) {
    for (const ConfigKey& key : schema.keys()) {
      EXPECT_NE(doc.find("`" + key.path + "`"), std::string::npos)
          << schema.title() << " key " << key.path << " is not documented";
    }
  }
}

TEST(ConfigurationDocTest, HelpTextNamesEveryKey) {
  for (const ConfigSchema& schema :
       {vendor::VendorConfigSchema(), partner::PartnerConfigSchema()}) {
    const std::string help = schema.HelpText();
    for (const ConfigKey& key : schema.keys()) {
      EXPECT_NE(help.find("  " + key.path + "  ("), std::string::npos) << key.path;
      EXPECT_FALSE(key.doc.empty()) << key.path;
    }
  }
}

}  // namespace
}  // namespace fedface
