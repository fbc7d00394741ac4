#include "core/config/config_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/test_env.h"

namespace fedface {
namespace {

using ::testing::HasSubstr;

ConfigSchema TestSchema() {
  using T = ConfigValueType;
  return ConfigSchema(
      "test configuration",
      {
          {.path = "server.listen", .type = T::kString, .required = true, .doc = "address"},
          {.path = "server.workers",
           .type = T::kInt,
           .default_value = "4",
           .doc = "threads",
           .min = 1,
           .max = 64},
          {.path = "server.verbose", .type = T::kBool, .default_value = "false", .doc = "logs"},
          {.path = "server.partners", .type = T::kStringList, .default_value = "[]", .doc = "ids"},
          {.path = "store.dir", .type = T::kPath, .default_value = "data", .doc = "folder"},
          {.path = "store.cert", .type = T::kFile, .doc = "a file"},
          {.path = "store.root", .type = T::kDir, .doc = "a folder"},
          {.path = "name", .type = T::kString, .doc = "optional"},
      });
}

absl::StatusOr<Config> ParseText(const std::string& yaml, const std::string& base = "/etc/ff") {
  static const ConfigSchema schema = TestSchema();
  return Config::Parse(yaml, "test.yaml", base, schema);
}

TEST(ConfigFileTest, ReadsTypedValuesAndFillsDefaults) {
  absl::StatusOr<Config> c = ParseText(
      "server:\n  listen: \"127.0.0.1:7443\"\n  verbose: true\n  partners: [acme, globex]\n"
      "store:\n  dir: ../cache\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->GetString("server.listen"), "127.0.0.1:7443");
  EXPECT_EQ(c->GetInt("server.workers"), 4);
  EXPECT_TRUE(c->GetBool("server.verbose"));
  EXPECT_EQ(c->GetStringList("server.partners"), (std::vector<std::string>{"acme", "globex"}));
  EXPECT_EQ(c->GetPath("store.dir"), "/etc/cache");  // relative to the file's folder
  EXPECT_EQ(c->GetString("name"), "");
  EXPECT_TRUE(c->IsSet("server.verbose"));
  EXPECT_FALSE(c->IsSet("server.workers"));
}

TEST(ConfigFileTest, DefaultPathsResolveAgainstTheFilesFolder) {
  absl::StatusOr<Config> c = ParseText("server:\n  listen: x\n", "/srv/node");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->GetPath("store.dir"), "/srv/node/data");
}

TEST(ConfigFileTest, ReportsUnknownKeyWithPositionAndSuggestion) {
  absl::StatusOr<Config> c = ParseText("server:\n  listen: x\n  wrokers: 3\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "test.yaml:3:3: unknown key 'server.wrokers' (did you mean 'server.workers'?)");
}

TEST(ConfigFileTest, ReportsARetiredKeyWithWhatReplacedIt) {
  ConfigSchema schema = TestSchema();
  schema.Retire({{.path = "server.old_switch", .advice = "replaced by `server.new_switch`"}});
  absl::StatusOr<Config> c =
      Config::Parse("server:\n  listen: x\n  old_switch: true\n", "test.yaml", "/etc/ff", schema);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "test.yaml:3:3: key 'server.old_switch' is no longer supported: replaced by "
            "`server.new_switch`");
}

TEST(ConfigFileTest, ReportsUnknownSectionWithoutSuggestion) {
  absl::StatusOr<Config> c = ParseText("server:\n  listen: x\ngallery:\n  path: /x\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "test.yaml:3:1: unknown key 'gallery'");
}

TEST(ConfigFileTest, ReportsWrongTypesNamingTheKey) {
  struct Case {
    std::string yaml, error;
  } cases[] = {
      {"server:\n  listen: x\n  workers: many\n",
       "test.yaml:3:12: server.workers: expected an integer, got 'many'"},
      {"server:\n  listen: x\n  workers: 2.5\n", "server.workers: expected an integer, got '2.5'"},
      {"server:\n  listen: [a, b]\n", "server.listen: expected a string, got a list"},
      {"server:\n  listen: x\n  verbose: yes\n", "server.verbose: expected true or false"},
      {"server:\n  listen: x\n  partners: acme\n",
       "server.partners: expected a list of strings, got a scalar"},
      {"server:\n  listen: x\n  partners: [[a]]\n", "got an item that is a list"},
      {"server: 5\n", "test.yaml:1:9: server: expected a section of keys, got a scalar"},
      {"server:\n  listen:\n", "server.listen: has no value"},
      {"- a\n- b\n", "expected a map of keys at the top, got a list"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Config> config = ParseText(c.yaml);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_THAT(config.status().message(), HasSubstr(c.error)) << c.yaml;
  }
}

TEST(ConfigFileTest, ReportsIntegerOutOfRange) {
  absl::StatusOr<Config> c = ParseText("server:\n  listen: x\n  workers: 65\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("server.workers: 65 is outside [1, 64]"));
  c = ParseText("server:\n  listen: x\n  workers: 99999999999999999999999\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("is outside [1, 64]"));
}

TEST(ConfigFileTest, ReportsMissingRequiredKey) {
  absl::StatusOr<Config> c = ParseText("");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "test.yaml: missing required key 'server.listen'");
}

TEST(ConfigFileTest, ReportsDuplicateKey) {
  absl::StatusOr<Config> c = ParseText("server:\n  listen: a\n  listen: b\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("test.yaml:3:3: duplicate key 'server.listen'"));
}

TEST(ConfigFileTest, ReportsInvalidYamlWithPosition) {
  absl::StatusOr<Config> c = ParseText("server:\n  listen: [x, y\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("test.yaml:"));
  EXPECT_THAT(c.status().message(), HasSubstr("not valid YAML"));
}

TEST(ConfigFileTest, ReportsEveryProblemOnOneLine) {
  absl::StatusOr<Config> c = ParseText("server:\n  workers: 0\n  colour: red\n");
  ASSERT_FALSE(c.ok());
  const std::string message(c.status().message());
  EXPECT_THAT(message, HasSubstr("server.workers: 0 is outside"));
  EXPECT_THAT(message, HasSubstr("unknown key 'server.colour'"));
  EXPECT_THAT(message, HasSubstr("missing required key 'server.listen'"));
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(ConfigFileTest, FileAndDirKeysMustExistAtLoad) {
  const std::string dir = testing::MakeTempDir("config");
  ASSERT_FALSE(dir.empty());
  std::ofstream(dir + "/ca.crt") << "x";
  std::filesystem::create_directories(dir + "/root");
  absl::StatusOr<Config> ok =
      ParseText("server:\n  listen: x\nstore:\n  cert: ca.crt\n  root: root\n", dir);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->GetPath("store.cert"), dir + "/ca.crt");

  absl::StatusOr<Config> missing =
      ParseText("server:\n  listen: x\nstore:\n  cert: nope.crt\n", dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(),
              HasSubstr("test.yaml:4:9: store.cert: " + dir + "/nope.crt: no such file"));
  absl::StatusOr<Config> not_dir = ParseText("server:\n  listen: x\nstore:\n  root: ca.crt\n", dir);
  ASSERT_FALSE(not_dir.ok());
  EXPECT_THAT(not_dir.status().message(), HasSubstr("not a directory"));
  absl::StatusOr<Config> not_file = ParseText("server:\n  listen: x\nstore:\n  cert: root\n", dir);
  ASSERT_FALSE(not_file.ok());
  EXPECT_THAT(not_file.status().message(), HasSubstr("not a regular file"));
}

TEST(ConfigFileTest, LoadNamesAMissingFile) {
  absl::StatusOr<Config> c = Config::Load("/nonexistent/fedface.yaml", TestSchema());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "/nonexistent/fedface.yaml: no such file");
}

TEST(ConfigFileTest, LoadResolvesPathsAgainstTheFilesFolder) {
  const std::string dir = testing::MakeTempDir("config");
  std::ofstream(dir + "/node.yaml") << "server:\n  listen: x\nstore:\n  dir: models\n";
  absl::StatusOr<Config> c = Config::Load(dir + "/node.yaml", TestSchema());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->GetPath("store.dir"), dir + "/models");
  EXPECT_EQ(c->source(), dir + "/node.yaml");
}

TEST(ConfigFileTest, ReadingAnUndeclaredKeyIsAProgrammingErrorThatAborts) {
  absl::StatusOr<Config> c = ParseText("server:\n  listen: x\n");
  ASSERT_TRUE(c.ok());
  EXPECT_DEATH(c->GetString("server.nope"), "not declared in the schema");
  EXPECT_DEATH(c->GetInt("server.listen"), "wrong type");
}

TEST(ConfigSchemaTest, HelpTextListsEveryKeyWithTypeAndDefault) {
  const std::string help = TestSchema().HelpText();
  EXPECT_THAT(help, HasSubstr("server.listen  (string, required)"));
  EXPECT_THAT(help, HasSubstr("server.workers  (integer in [1, 64], default 4)"));
  EXPECT_THAT(help, HasSubstr("store.cert  (file, optional)"));
}

}  // namespace
}  // namespace fedface
