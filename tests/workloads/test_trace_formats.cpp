// Round trips through every writable format, batch boundaries, format detection, fetch folding.
#include <gtest/gtest.h>

#include "workloads/binary_format.h"
#include "trace_test_util.h"

namespace shadowsim {
namespace {

using test::ScratchDir;

class RoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(RoundTrip, RandomRecordsComeBackExactly) {
  ScratchDir dir;
  for (uint64_t seed : {1, 2, 3}) {
    const auto records = test::random_records(seed, 50'000);
    const std::string path = dir.path(std::string("t") + GetParam());
    test::write_trace(path, records);
    // Batch sizes that split records across window refills and M-style pairs differently.
    for (size_t batch : {1, 7, 4096, 100'000}) {
      auto reader = open_trace(path);
      const auto back = test::read_all(*reader, batch);
      ASSERT_EQ(back.size(), records.size()) << "seed " << seed << " batch " << batch;
      for (size_t i = 0; i < records.size(); ++i) {
        ASSERT_EQ(back[i], records[i]) << "record " << i << " seed " << seed;
      }
    }
  }
}

TEST_P(RoundTrip, EmptyStream) {
  ScratchDir dir;
  const std::string path = dir.path(std::string("empty") + GetParam());
  test::write_trace(path, {});
  EXPECT_TRUE(test::read_all(path).empty());
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip,
                         ::testing::Values(".sst", ".sst.zst", ".sstx", ".sstx.zst"),
                         [](const auto& info) {
                           std::string s = info.param + 1;
                           for (char& c : s) if (c == '.') c = '_';
                           return s;
                         });

TEST(TraceFormats, VarintsAndZigzagCoverTheWholeRange) {
  uint8_t buf[16];
  for (uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 16383ULL, 16384ULL, 1ULL << 63, ~0ULL}) {
    uint8_t* end = sst::put_varint(buf, v);
    uint64_t back = 0;
    EXPECT_EQ(sst::get_varint(buf, &back), end);
    EXPECT_EQ(back, v);
    EXPECT_EQ(sst::unzigzag(sst::zigzag(v)), v);
  }
  EXPECT_EQ(sst::zigzag(0), 0u);
  EXPECT_EQ(sst::zigzag(~0ULL), 1u);  // -1
  EXPECT_EQ(sst::zigzag(1), 2u);
  // An 11-byte varint, and a 10-byte one whose last byte carries bits beyond 64, are refused.
  uint8_t too_long[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  uint64_t v;
  EXPECT_EQ(sst::get_varint(too_long, &v), nullptr);
  uint8_t too_big[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  EXPECT_EQ(sst::get_varint(too_big, &v), nullptr);
}

TEST(TraceFormats, SequentialCodeCostsTwoBytesPerFetch) {
  ScratchDir dir;
  std::vector<TraceRecord> code;
  for (uint64_t pc = 0x401000; code.size() < 1000; pc += 4) {
    code.push_back({RefKind::kFetch, 4, 0, pc});
  }
  const std::string path = dir.path("seq.sst");
  test::write_trace(path, code);
  const size_t bytes = test::read_file(path).size();
  // header + first fetch (tag + 4-byte delta of 0x401000) + 999 * (tag + zero delta) + end marker
  // (tag, two 2-byte varints of 1000, 8-byte check sum)
  EXPECT_EQ(bytes, 8u + 5 + 999 * 2 + 5 + 8);
  EXPECT_EQ(test::read_all(path), code);
}

TEST(TraceFormats, BinaryMagicWinsOverTheExtension) {
  ScratchDir dir;
  const auto records = test::random_records(7, 100);
  test::write_trace(dir.path("a.sst"), records);
  std::filesystem::copy_file(dir.path("a.sst"), dir.path("a.dat"));
  EXPECT_EQ(test::read_all(dir.path("a.dat")), records);
  EXPECT_EQ(detect_trace_type(dir.path("a.dat")).format, TraceFormat::kBinary);
  test::write_trace(dir.path("b.sst.zst"), records);
  std::filesystem::copy_file(dir.path("b.sst.zst"), dir.path("b.bin"));
  const TraceFileType t = detect_trace_type(dir.path("b.bin"));
  EXPECT_EQ(t.format, TraceFormat::kBinary);
  EXPECT_TRUE(t.zstd);
  EXPECT_EQ(test::read_all(dir.path("b.bin")), records);
}

TEST(TraceFormats, ExplicitFormatOverridesTheExtension) {
  ScratchDir dir;
  test::write_file(dir.path("hand.txt"), "R 0x10 8\n");
  EXPECT_NE(test::error_of([&] { open_trace(dir.path("hand.txt")); }).find("unknown trace format"),
            std::string::npos);
  TraceOpenOptions o;
  o.format = TraceFormat::kText;
  const auto back = test::read_all(dir.path("hand.txt"), o);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], (TraceRecord{RefKind::kRead, 8, 0, 0x10}));
}

TEST(TraceFormats, FileTypeFromExtension) {
  EXPECT_EQ(trace_file_type("a/b.sst").format, TraceFormat::kBinary);
  EXPECT_FALSE(trace_file_type("a/b.sst").zstd);
  EXPECT_EQ(trace_file_type("b.sst.zst").format, TraceFormat::kBinary);
  EXPECT_TRUE(trace_file_type("b.sst.zst").zstd);
  EXPECT_EQ(trace_file_type("b.sstx.zst").format, TraceFormat::kText);
  EXPECT_EQ(trace_file_type("x.lackey").format, TraceFormat::kLackey);
  EXPECT_EQ(trace_file_type("x.json").format, TraceFormat::kAuto);
  EXPECT_EQ(trace_file_type("x.zst").format, TraceFormat::kAuto);
}

TEST(TraceFormats, TextSyntax) {
  ScratchDir dir;
  test::write_file(dir.path("t.sstx"),
                   "# a comment\n"
                   "\n"
                   "F 0x401000 3\r\n"
                   "  R\t0X7FFD1234 8 +12   # trailing comment\n"
                   "W 0xffffffffffffffff 255 +4294967295\n"
                   "W 0x0 1 +0");  // no final newline
  const auto r = test::read_all(dir.path("t.sstx"));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0], (TraceRecord{RefKind::kFetch, 3, 0, 0x401000}));
  EXPECT_EQ(r[1], (TraceRecord{RefKind::kRead, 8, 12, 0x7ffd1234}));
  EXPECT_EQ(r[2], (TraceRecord{RefKind::kWrite, 255, UINT32_MAX, ~0ULL}));
  EXPECT_EQ(r[3], (TraceRecord{RefKind::kWrite, 1, 0, 0}));
}

TEST(TraceFormats, DroppingFetchesFoldsThemIntoTheNextGap) {
  ScratchDir dir;
  auto records = test::random_records(11, 20'000);
  for (TraceRecord& r : records) r.gap %= 1000;  // overflow has its own test
  test::write_trace(dir.path("r.sst"), records);
  // Reference: the definition, applied record by record.
  std::vector<TraceRecord> expected;
  uint64_t pending = 0, total = 0, trailing = 0;
  for (const TraceRecord& r : records) {
    total += instructions_of(r);
    if (r.kind == RefKind::kFetch) {
      pending += r.gap + 1ULL;
      continue;
    }
    TraceRecord k = r;
    k.gap = static_cast<uint32_t>(pending + r.gap);
    pending = 0;
    expected.push_back(k);
  }
  trailing = pending;
  TraceOpenOptions o;
  o.fetches = false;
  for (size_t batch : {1, 3, 4096}) {
    auto reader = open_trace(dir.path("r.sst"), o);
    const auto back = test::read_all(*reader, batch);
    ASSERT_EQ(back, expected);
    uint64_t kept = 0;
    for (const TraceRecord& r : back) {
      EXPECT_NE(r.kind, RefKind::kFetch);
      kept += instructions_of(r);
    }
    EXPECT_EQ(kept + trailing, total) << "only the instructions after the last data record go";
  }
}

TEST(TraceFormats, DroppingFetchesReportsAGapOverflow) {
  ScratchDir dir;
  test::write_trace(dir.path("o.sst"), {{RefKind::kFetch, 4, UINT32_MAX, 0x1000},
                                        {RefKind::kRead, 4, 0, 0x2000}});
  TraceOpenOptions o;
  o.fetches = false;
  const std::string msg = test::error_of([&] { test::read_all(dir.path("o.sst"), o); });
  EXPECT_NE(msg.find("o.sst"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gap field"), std::string::npos) << msg;
}

TEST(TraceFormats, WriterRefusesRecordsTheFormatCannotHold) {
  ScratchDir dir;
  for (const char* ext : {".sst", ".sstx"}) {
    auto w = create_trace(dir.path(std::string("w") + ext));
    const std::string msg = test::error_of([&] { w->write({RefKind::kRead, 0, 0, 0x10}); });
    EXPECT_NE(msg.find("size 0"), std::string::npos) << msg;
    const std::string msg2 =
        test::error_of([&] { w->write({static_cast<RefKind>(4), 4, 0, 0x10}); });
    EXPECT_NE(msg2.find("kind 4"), std::string::npos) << msg2;
  }
  EXPECT_NE(test::error_of([&] { create_trace(dir.path("x.lackey")); }).find("import only"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { create_trace(dir.path("x.bin")); }).find("unknown format"),
            std::string::npos);
}

TEST(TraceFormats, UnclosedBinaryWriterLeavesATruncatedTrace) {
  ScratchDir dir;
  {
    auto w = create_trace(dir.path("u.sst"));
    const auto records = test::random_records(5, 10);
    w->write(records.data(), records.size());
  }  // destroyed without close(): buffered data goes, the end marker never comes
  const std::string msg = test::error_of([&] { test::read_all(dir.path("u.sst")); });
  EXPECT_NE(msg.find("end marker"), std::string::npos) << msg;
}

}  // namespace
}  // namespace shadowsim
