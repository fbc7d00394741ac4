// Pair-list parsing: both formats, tolerated variations, and errors that name the line.
#include "partner_node/evaluation/pair_list.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

using ::testing::HasSubstr;

TEST(PairList, ParsesCsvWithSpacesCrlfAndMixedCase) {
  absl::StatusOr<std::vector<LabelledPair>> p = ParsePairList(
      "\xEF\xBB\xBF"
      "file_x,file_y,Decision\r\n a/1.jpg , b/2.jpg , Yes \r\n\r\nc.jpg,d.jpg,no\r\n",
      "pairs.csv");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].file_x, "a/1.jpg");
  EXPECT_EQ((*p)[0].file_y, "b/2.jpg");
  EXPECT_TRUE((*p)[0].mated);
  EXPECT_EQ((*p)[1].file_x, "c.jpg");
  EXPECT_FALSE((*p)[1].mated);
}

TEST(PairList, CsvQuotedFieldsMayHoldCommas) {
  absl::StatusOr<std::vector<LabelledPair>> p =
      ParsePairList("file_x,file_y,Decision\n\"a,b.jpg\",\"say \"\"hi\"\".jpg\",YES\n", "p.csv");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)[0].file_x, "a,b.jpg");
  EXPECT_EQ((*p)[0].file_y, "say \"hi\".jpg");
}

TEST(PairList, CsvErrorsNameTheLine) {
  auto err = [](const char* text) { return ParsePairList(text, "p.csv").status().ToString(); };
  EXPECT_THAT(err("file_x,file_y,Decision\na.jpg,b.jpg,Yes\nc.jpg,d.jpg,Maybe\n"),
              HasSubstr("p.csv:3: Decision must be Yes or No, found 'Maybe'"));
  EXPECT_THAT(err("file_x,file_y,Decision\na.jpg,b.jpg\n"), HasSubstr("p.csv:2: expected 3"));
  EXPECT_THAT(err("file_x,file_y,Decision\n\"a.jpg,b.jpg,Yes\n"),
              HasSubstr("p.csv:2: unterminated"));
  EXPECT_THAT(err("file_x,file_z,Decision\n"), HasSubstr("p.csv:1: expected the header"));
  EXPECT_THAT(err("file_x,file_y,Decision\n/etc/passwd,b.jpg,No\n"),
              HasSubstr("p.csv:2: absolute path"));
  EXPECT_THAT(err("file_x,file_y,Decision\nok.jpg,a/../../b.jpg,No\n"),
              HasSubstr("p.csv:2: path 'a/../../b.jpg' leaves the images folder"));
  EXPECT_THAT(err("file_x,file_y,Decision\n,b.jpg,No\n"), HasSubstr("p.csv:2: empty file name"));
  EXPECT_THAT(err("\n  \n"), HasSubstr("p.csv: the pair list is empty"));
}

TEST(PairList, ParsesLfwPairsWithSingleCount) {
  absl::StatusOr<std::vector<LabelledPair>> p = ParsePairList(
      "2\nAaron_Peirsol\t1\t2\nAbel_Pacheco 1 4\nAbdullah 1 Bob_Hope 12\nX 3 Y 1\n", "pairs.txt");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 4u);
  EXPECT_EQ((*p)[0].file_x, "Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
  EXPECT_EQ((*p)[0].file_y, "Aaron_Peirsol/Aaron_Peirsol_0002.jpg");
  EXPECT_TRUE((*p)[0].mated);
  EXPECT_EQ((*p)[2].file_x, "Abdullah/Abdullah_0001.jpg");
  EXPECT_EQ((*p)[2].file_y, "Bob_Hope/Bob_Hope_0012.jpg");
  EXPECT_FALSE((*p)[2].mated);
}

TEST(PairList, ParsesLfwFoldsHeaderWithCrlf) {
  absl::StatusOr<std::vector<LabelledPair>> p =
      ParsePairList("2\t1\r\nA 1 2\r\nA 1 B 1\r\nC 3 4\r\nC 1 D 2\r\n", "pairs.txt");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->size(), 4u);
  EXPECT_EQ((*p)[2].file_y, "C/C_0004.jpg");
}

TEST(PairList, LfwErrorsNameTheLine) {
  auto err = [](const char* text) { return ParsePairList(text, "pairs.txt").status().ToString(); };
  EXPECT_THAT(err("1\nA 1 2\nA 1\n"), HasSubstr("pairs.txt:3: expected 'name i j'"));
  EXPECT_THAT(err("1\nA 1 x\nA 1 B 2\n"), HasSubstr("pairs.txt:2: image number 'x'"));
  EXPECT_THAT(err("2\nA 1 2\nA 1 B 2\n"),
              HasSubstr("pairs.txt:1: header announces 4 pairs, the file has 2"));
  EXPECT_THAT(err("many pairs here\n"), HasSubstr("pairs.txt:1: expected a CSV header"));
  EXPECT_THAT(err("1\n.. 1 2\nA 1 B 2\n"), HasSubstr("pairs.txt:2: subject name '..'"));
}

TEST(PairList, ReadsFromFileAndNamesMissingFile) {
  const std::string dir = testing::MakeTempDir("pair_list");
  const std::string path = dir + "/pairs.csv";
  std::ofstream(path) << "file_x,file_y,Decision\na.jpg,b.jpg,Yes\n";
  absl::StatusOr<std::vector<LabelledPair>> p = ReadPairList(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->size(), 1u);
  EXPECT_THAT(ReadPairList(dir + "/absent.csv").status().ToString(), HasSubstr("absent.csv"));
}

}  // namespace
}  // namespace fedface::partner
