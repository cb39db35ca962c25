// The valgrind lackey importer against hand-written snippets whose records were counted by hand.
#include <gtest/gtest.h>

#include "trace_test_util.h"
#include "workloads/byte_stream.h"

namespace shadowsim {
namespace {

using test::ScratchDir;

// Shaped like `valgrind --tool=lackey --trace-mem=yes --log-file=F PROG` output.
constexpr const char* kSnippet =
    "==9830== Lackey, an example Valgrind tool\n"
    "==9830== Copyright (C) 2002-2017, and GNU GPL'd, by Nicholas Nethercote.\n"
    "==9830== Command: ./a.out\n"
    "==9830== \n"
    "I  04016f0,3\n"          // fetch
    " S 1ffefffd88,8\n"       // write
    "I  04016f3,4\n"          // fetch
    " L 04222cac,4\n"         // read
    " M 0422a0d0,8\n"         // read + write
    "I  04016f7,7\n"          // fetch
    "I  04016fe,2\n"          // fetch
    " L 1ffefffd80,16\n"      // read
    "==9830== \n"
    "==9830== Exit code:       0\n";

TEST(LackeyImport, HandCountedRecords) {
  ScratchDir dir;
  test::write_file(dir.path("a.lackey"), kSnippet);
  const std::vector<TraceRecord> expected = {
      {RefKind::kFetch, 3, 0, 0x4016f0},   {RefKind::kWrite, 8, 0, 0x1ffefffd88},
      {RefKind::kFetch, 4, 0, 0x4016f3},   {RefKind::kRead, 4, 0, 0x4222cac},
      {RefKind::kRead, 8, 0, 0x422a0d0},   {RefKind::kWrite, 8, 0, 0x422a0d0},
      {RefKind::kFetch, 7, 0, 0x4016f7},   {RefKind::kFetch, 2, 0, 0x4016fe},
      {RefKind::kRead, 16, 0, 0x1ffefffd80},
  };
  // Batch size 5 ends a batch between the M line's read and write.
  for (size_t batch : {1, 5, 4096}) {
    auto reader = open_trace(dir.path("a.lackey"));
    EXPECT_EQ(test::read_all(*reader, batch), expected) << "batch " << batch;
  }
}

TEST(LackeyImport, NoFetchFoldsInstructionsIntoTheNextGap) {
  ScratchDir dir;
  test::write_file(dir.path("a.lackey"), kSnippet);
  TraceOpenOptions o;
  o.fetches = false;
  // I S | I L | M(read, write) | I I L: gaps 1, 1, 0, 0, 2 — four instructions, as with fetches.
  const std::vector<TraceRecord> expected = {
      {RefKind::kWrite, 8, 1, 0x1ffefffd88}, {RefKind::kRead, 4, 1, 0x4222cac},
      {RefKind::kRead, 8, 0, 0x422a0d0},     {RefKind::kWrite, 8, 0, 0x422a0d0},
      {RefKind::kRead, 16, 2, 0x1ffefffd80},
  };
  for (size_t batch : {1, 2, 4096}) {
    auto reader = open_trace(dir.path("a.lackey"), o);
    EXPECT_EQ(test::read_all(*reader, batch), expected) << "batch " << batch;
  }
}

TEST(LackeyImport, CompressedLogAndExplicitFormat) {
  ScratchDir dir;
  test::write_file(dir.path("a.lackey"), kSnippet);
  const auto plain = test::read_all(dir.path("a.lackey"));
  // The same log under a neutral name needs --from lackey; compressed it keeps its extension.
  std::filesystem::copy_file(dir.path("a.lackey"), dir.path("log.txt"));
  TraceOpenOptions o;
  o.format = TraceFormat::kLackey;
  EXPECT_EQ(test::read_all(dir.path("log.txt"), o), plain);
  auto sink = zstd_sink(dir.path("a.lackey.zst"), 3);
  const std::string text = kSnippet;
  sink->write(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  sink->finish();
  EXPECT_EQ(test::read_all(dir.path("a.lackey.zst")), plain);
}

TEST(LackeyImport, CrLfAndBlankLinesAreAccepted) {
  ScratchDir dir;
  test::write_file(dir.path("b.lackey"), "I  0400000,2\r\n\n S 0600000,4\r\n");
  const auto r = test::read_all(dir.path("b.lackey"));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1], (TraceRecord{RefKind::kWrite, 4, 0, 0x600000}));
}

}  // namespace
}  // namespace shadowsim
