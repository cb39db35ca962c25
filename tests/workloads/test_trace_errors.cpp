// Bad inputs: every message names the file and the record (binary) or line (text, lackey).
#include <gtest/gtest.h>

#include "trace_test_util.h"

namespace shadowsim {
namespace {

using test::ScratchDir;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s += static_cast<char>(v);
  return s;
}

// Hand-encoded from docs/trace-format.md, so these tests check the specification too.
const std::string kHeader = bytes({0x89, 'S', 'S', 'T', 1, 0, 0, 0});
const std::string kRec0 = bytes({0x08, 0x80, 0x40});  // R size 8, delta +0x1000 -> 0x1000
const std::string kRec1 = bytes({0x34, 0x03, 0x20});  // W size 4, gap 3, delta +0x10 -> 0x1010
const std::string kRec2 = bytes({0x40, 0x10, 0x80, 0x80, 0x80, 0x04});  // F size 16 @ 0x400000
// End: 3 records, 3 + 1 instructions, check sum 0x1800 + 0x31411 + 0x401002 = 0x433c13.
const std::string kSum = bytes({0x13, 0x3c, 0x43, 0, 0, 0, 0, 0});
const std::string kEnd = bytes({0xff, 0x03, 0x04}) + kSum;

TEST(TraceErrors, HandEncodedBinaryDecodes) {
  ScratchDir dir;
  test::write_file(dir.path("ok.sst"), kHeader + kRec0 + kRec1 + kRec2 + kEnd);
  const std::vector<TraceRecord> expected = {{RefKind::kRead, 8, 0, 0x1000},
                                             {RefKind::kWrite, 4, 3, 0x1010},
                                             {RefKind::kFetch, 16, 0, 0x400000}};
  EXPECT_EQ(test::read_all(dir.path("ok.sst")), expected);
  // And the writer produces exactly these bytes.
  test::write_trace(dir.path("w.sst"), expected);
  EXPECT_EQ(test::read_file(dir.path("w.sst")), kHeader + kRec0 + kRec1 + kRec2 + kEnd);
}

struct BadInput {
  const char* name;
  const char* file;        // extension picks the reader
  std::string content;
  std::vector<const char*> message;  // each must appear in the error
};

class TraceErrors : public ::testing::TestWithParam<BadInput> {};

TEST_P(TraceErrors, MessageNamesFileAndPlace) {
  const BadInput& in = GetParam();
  ScratchDir dir;
  const std::string path = dir.path(in.file);
  test::write_file(path, in.content);
  const std::string msg = test::error_of([&] { test::read_all(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  for (const char* part : in.message) EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

const std::string kTextHead = "# header\nR 0x10 8\n";  // the bad line is line 3

std::vector<BadInput> bad_inputs() {
  const std::string all = kHeader + kRec0 + kRec1 + kRec2 + kEnd;
  return {
      // binary
      {"bad_magic", "a.sst", "SSTB" + all.substr(4),
       {"not a shadowsim binary trace", "89 53 53 54"}},
      {"empty_binary", "a.sst", "", {"empty file"}},
      {"wrong_version", "a.sst", all.substr(0, 4) + bytes({2}) + all.substr(5), {"version 2"}},
      {"nonzero_flags", "a.sst", all.substr(0, 5) + bytes({1}) + all.substr(6), {"expected 0"}},
      {"short_header", "a.sst", kHeader.substr(0, 6), {"header cut short"}},
      {"truncated_in_record", "a.sst", kHeader + kRec0 + kRec1 + kRec2.substr(0, 3),
       {"record 2", "inside a record"}},
      {"truncated_before_end", "a.sst", kHeader + kRec0 + kRec1 + kRec2,
       {"record 3", "end marker"}},
      {"truncated_in_end", "a.sst", kHeader + kRec0 + kRec1 + kRec2 + kEnd.substr(0, 2),
       {"record 3", "inside the end marker"}},
      {"reserved_tag", "a.sst", kHeader + kRec0 + bytes({0x8a}) + kRec1.substr(1) + kRec2 + kEnd,
       {"record 1", "0x8a", "reserved"}},
      {"kind_3_tag", "a.sst", kHeader + kRec0 + bytes({0x74}) + kRec1.substr(1) + kRec2 + kEnd,
       {"record 1", "kind 3"}},
      {"size_byte_zero", "a.sst", kHeader + kRec0 + kRec1 + bytes({0x40, 0x00, 0x00}) + kEnd,
       {"record 2", "size byte 0"}},
      {"overlong_varint", "a.sst",
       kHeader + bytes({0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}),
       {"record 0", "varint"}},
      {"end_count_mismatch", "a.sst",
       kHeader + kRec0 + kRec1 + kRec2 + bytes({0xff, 0x05, 0x04}) + kSum,
       {"record 3", "end marker says 5 records"}},
      // The second record's address delta 0x20 -> 0x22: write at 0x1011, the fetch unchanged.
      {"check_sum_mismatch", "a.sst",
       kHeader + kRec0 + bytes({0x34, 0x03, 0x22}) + kRec2 + kEnd,
       {"record 3", "check sum 0x0000000000433c13", "0x0000000000433c14"}},
      {"data_after_end", "a.sst", all + bytes({0x00}), {"data after the end marker"}},
      // text
      {"text_kind", "a.sstx", kTextHead + "Q 0x10 8\n", {":3:", "kind 'Q'"}},
      {"text_no_0x", "a.sstx", kTextHead + "R 10 8\n", {":3:", "address '10'"}},
      {"text_long_address", "a.sstx", kTextHead + "R 0x10000000000000000 8\n", {":3:", "address"}},
      {"text_size_0", "a.sstx", kTextHead + "R 0x10 0\n", {":3:", "size '0'"}},
      {"text_size_256", "a.sstx", kTextHead + "R 0x10 256\n", {":3:", "size '256'"}},
      {"text_gap_without_plus", "a.sstx", kTextHead + "R 0x10 8 12\n", {":3:", "gap '12'"}},
      {"text_gap_too_big", "a.sstx", kTextHead + "R 0x10 8 +4294967296\n", {":3:", "gap"}},
      {"text_too_few_fields", "a.sstx", kTextHead + "R 0x10\n", {":3:", "2 fields"}},
      {"text_too_many_fields", "a.sstx", kTextHead + "R 0x10 8 +1 x\n", {":3:", "5 fields"}},
      // lackey
      {"lackey_program_output", "a.lackey", "==1== hi\nI  0400,3\nhello world\n",
       {":3:", "not a lackey trace line", "kind 'h'"}},
      {"lackey_kind", "a.lackey", "I  0400,3\n X 0400,3\n", {":2:", "kind 'X'"}},
      {"lackey_hex", "a.lackey", "I  0400,3\n L 04zz,4\n", {":2:", "address"}},
      {"lackey_no_comma", "a.lackey", "I  0400,3\n L 0400;4\n", {":2:", "address"}},
      {"lackey_size_0", "a.lackey", "I  0400,3\n\n L 0400,0\n", {":3:", "size"}},
      {"lackey_size_big", "a.lackey", "I  0400,3\n L 0400,256\n", {":2:", "size"}},
      {"lackey_bad_header", "a.lackey", "==abc== hi\n", {":1:", "not a lackey trace line"}},
      {"lackey_no_space", "a.lackey", "I0400,3\n", {":1:", "no space after the kind"}},
  };
}

INSTANTIATE_TEST_SUITE_P(Table, TraceErrors, ::testing::ValuesIn(bad_inputs()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TraceErrorsZstd, TruncatedAndCorruptCompressedTraces) {
  ScratchDir dir;
  const std::string path = dir.path("big.sst.zst");
  test::write_trace(path, test::random_records(3, 200'000));
  const std::string good = test::read_file(path);
  ASSERT_GT(good.size(), 10'000u);

  const std::string cut = dir.path("cut.sst.zst");
  test::write_file(cut, good.substr(0, good.size() / 2));
  std::string msg = test::error_of([&] { test::read_all(cut); });
  EXPECT_NE(msg.find(cut), std::string::npos) << msg;
  EXPECT_NE(msg.find("record "), std::string::npos) << msg;
  EXPECT_NE(msg.find("ends inside a zstd frame"), std::string::npos) << msg;

  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x5a);
  const std::string bad = dir.path("bad.sst.zst");
  test::write_file(bad, flipped);
  msg = test::error_of([&] { test::read_all(bad); });
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
  EXPECT_NE(msg.find("record "), std::string::npos) << msg;
}

// Random damage (flipped bytes, cuts, inserted bytes) must end in a clean Error naming the file, or
// in a stream that decodes; never a crash or a read outside the data (run under ASan too).
TEST(TraceErrorsFuzz, DamagedBinaryTracesFailCleanly) {
  ScratchDir dir;
  const std::string path = dir.path("f.sst");
  test::write_trace(path, test::random_records(8, 300));
  const std::string good = test::read_file(path);
  Rng rng(99);
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    const int what = static_cast<int>(rng.below(3));
    const size_t at = 8 + rng.below(bad.size() - 8);  // keep the header: test the records
    if (what == 0) bad[at] = static_cast<char>(rng.next());
    if (what == 1) bad.resize(at);
    if (what == 2) bad.insert(at, 1, static_cast<char>(rng.next()));
    test::write_file(path, bad);
    try {
      test::read_all(path);
    } catch (const Error& e) {
      ++errors;
      ASSERT_NE(std::string(e.what()).find(path + ": record "), std::string::npos) << e.what();
    }
  }
  // Nearly all damage is caught: the end marker's counts and check sum cover every record.
  EXPECT_GT(errors, 2950);
}

TEST(TraceErrorsOpen, MissingFileAndUnknownFormat) {
  ScratchDir dir;
  std::string msg = test::error_of([&] { open_trace(dir.path("none.sst")); });
  EXPECT_NE(msg.find("none.sst"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
  test::write_file(dir.path("x.dat"), "hello\n");
  msg = test::error_of([&] { open_trace(dir.path("x.dat")); });
  EXPECT_NE(msg.find("x.dat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown trace format"), std::string::npos) << msg;
}

}  // namespace
}  // namespace shadowsim
