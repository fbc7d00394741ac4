// What may be a subject, and what in a gallery folder is an enrolment image.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "partner_node/enroll/gallery_folder.h"
#include "partner_node/enroll/subject_name.h"
#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

namespace fs = std::filesystem;

TEST(SubjectNameTest, AcceptsOrdinaryAndUnicodeNames) {
  for (const char* name : {"amy", "Amy Farrah Fowler", "o'brien-2", "Zoë", "李小龙", "a.b", "x"}) {
    EXPECT_TRUE(ValidateSubjectName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateSubjectName(std::string(kMaxSubjectNameBytes, 'a')).ok());
}

TEST(SubjectNameTest, RefusesPathsControlCharactersBadUtf8AndOverlongNames) {
  const std::string bad[] = {"",
                             ".",
                             "..",
                             ".hidden",
                             "a/b",
                             "../etc",
                             "a\\b",
                             " amy",
                             "amy ",
                             std::string("a\0b", 3),
                             "tab\there",
                             "new\nline",
                             "del\x7f",
                             "\xff\xfe",
                             "\xc0\xaf",      // overlong '/'
                             "\xed\xa0\x80",  // a UTF-16 surrogate
                             "caf\xc3",       // truncated sequence
                             std::string(kMaxSubjectNameBytes + 1, 'a')};
  for (const std::string& name : bad) {
    absl::Status s = ValidateSubjectName(name);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "'" << name << "'";
  }
}

TEST(SubjectNameTest, ErrorsDoNotRepeatTheName) {
  absl::Status s = ValidateSubjectName("secret-canary/x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(std::string(s.message()).find("secret-canary"), std::string::npos) << s;
}

TEST(GalleryFolderTest, ListsSubjectImagesAndReportsEverythingElse) {
  const fs::path root = testing::MakeTempDir("gallery-folder");
  ASSERT_FALSE(root.empty());
  auto touch = [&](const fs::path& rel) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << "x";
  };
  touch("amy/a1.png");
  touch("amy/A2.JPG");
  touch("amy/notes.txt");
  touch("amy/.DS_Store");
  touch("amy/nested/a3.png");
  touch("raj/r1.webp");
  touch("loose.jpg");
  touch(".hidden/h1.png");
  touch(" bad/b1.png");
  fs::create_directories(root / "empty");

  absl::StatusOr<GalleryFolder> folder = ListGalleryFolder(root.string());
  ASSERT_TRUE(folder.ok()) << folder.status();
  std::vector<std::string> files;
  for (const GalleryFile& f : folder->files) {
    files.push_back(f.relative_path);
    EXPECT_EQ(f.path, (root / f.relative_path).string());
    EXPECT_EQ(f.relative_path.substr(0, f.subject.size() + 1), f.subject + "/");
  }
  EXPECT_EQ(files, (std::vector<std::string>{"amy/A2.JPG", "amy/a1.png", "raj/r1.webp"}));
  EXPECT_EQ(folder->skipped,
            (std::vector<std::string>{" bad/: subject name starts or ends with a space",
                                      "amy/nested/: nested folder (one level of subjects)",
                                      "amy/notes.txt: not an image file name",
                                      "loose.jpg: not in a subject folder"}));
}

TEST(GalleryFolderTest, RefusesAMissingFolder) {
  absl::StatusOr<GalleryFolder> folder = ListGalleryFolder("/nonexistent/fedface/gallery");
  ASSERT_FALSE(folder.ok());
  EXPECT_NE(std::string(folder.status().message()).find("/nonexistent/fedface/gallery"),
            std::string::npos);
}

}  // namespace
}  // namespace fedface::partner
