// OS events in traces: round trips in every format and batch size, events() lifetime, the byte
// and text encodings, malformed events, instruction counts and the record droppers.
#include <gtest/gtest.h>

#include "trace_test_util.h"
#include "workloads/trace_summary.h"

namespace shadowsim {
namespace {

using test::Item;
using test::ScratchDir;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s += static_cast<char>(v);
  return s;
}

constexpr uint32_t kPrivAnon = OsEvent::kMapPrivate | OsEvent::kMapAnonymous;

class EventRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(EventRoundTrip, RandomStreamsComeBackExactly) {
  ScratchDir dir;
  for (uint64_t seed : {1, 2}) {
    const auto items = test::random_items(seed, 20'000);
    const std::string path = dir.path(std::string("t") + GetParam());
    test::write_items(path, items);
    for (size_t batch : {1, 7, 4096}) {
      const auto back = test::read_items(path, {}, batch);
      ASSERT_EQ(back.size(), items.size()) << "seed " << seed << " batch " << batch;
      for (size_t i = 0; i < items.size(); ++i) {
        ASSERT_EQ(back[i], items[i]) << "item " << i << " seed " << seed << " batch " << batch;
      }
    }
  }
}

// Events first, last, back to back, and on both sides of the edges of batches of 7 and 4096.
TEST_P(EventRoundTrip, EventsAtBatchEdges) {
  ScratchDir dir;
  std::vector<Item> items;
  Rng rng(5);
  for (size_t i = 0; i < 8200; ++i) {
    const bool edge = i % 7 == 0 || i % 7 == 6 || (i >= 4094 && i <= 4098) || i >= 8190;
    if (edge || i < 3) {
      items.push_back(Item::ev(test::random_event(rng), static_cast<uint32_t>(i % 3)));
    } else {
      items.push_back(Item::ref(RefKind::kRead, 8, 0x1000 + 8 * i, static_cast<uint32_t>(i % 2)));
    }
  }
  const std::string path = dir.path(std::string("edges") + GetParam());
  test::write_items(path, items);
  for (size_t batch : {1, 6, 7, 8, 4095, 4096, 4097}) {
    EXPECT_EQ(test::read_items(path, {}, batch), items) << "batch " << batch;
  }
}

TEST_P(EventRoundTrip, OnlyEvents) {
  ScratchDir dir;
  const std::vector<Item> items = {Item::ev(OsEvent::exec()), Item::ev(OsEvent::exit(), 7)};
  const std::string path = dir.path(std::string("only") + GetParam());
  test::write_items(path, items);
  EXPECT_EQ(test::read_items(path), items);
}

INSTANTIATE_TEST_SUITE_P(Formats, EventRoundTrip,
                         ::testing::Values(".sst", ".sst.zst", ".sstx", ".sstx.zst"),
                         [](const auto& info) {
                           std::string s = info.param + 1;
                           for (char& c : s) if (c == '.') c = '_';
                           return s;
                         });

TEST(TraceEvents, EventsStayValidUntilTheNextRead) {
  ScratchDir dir;
  const std::vector<Item> items = {
      Item::ref(RefKind::kFetch, 2, 0x401000),
      Item::ev(OsEvent::mmap(0x7f0000000000, 0x21000, 3, kPrivAnon)),
      Item::ref(RefKind::kWrite, 8, 0x7f0000000010),
      Item::ev(OsEvent::munmap(0x7f0000000000, 0x21000)),
      Item::ref(RefKind::kRead, 8, 0x601000),
      Item::ref(RefKind::kRead, 8, 0x601008),
  };
  for (const char* ext : {".sst", ".sstx"}) {
    const std::string path = dir.path(std::string("v") + ext);
    test::write_items(path, items);
    auto reader = open_trace(path);
    std::vector<TraceRecord> batch(3);
    std::vector<OsEvent> seen;
    while (const size_t n = reader->read(batch.data(), batch.size())) {
      const std::vector<OsEvent>& events = reader->events();
      const std::vector<OsEvent> copy = events;
      // Using the batch (the reader is not touched) leaves them as they were.
      for (size_t i = 0; i < n; ++i) {
        if (batch[i].kind != RefKind::kEvent) continue;
        ASSERT_LT(batch[i].va, events.size()) << ext;
        seen.push_back(events[batch[i].va]);
      }
      EXPECT_EQ(reader->events(), copy) << ext;
      if (std::none_of(batch.begin(), batch.begin() + static_cast<ptrdiff_t>(n),
                       [](const TraceRecord& r) { return r.kind == RefKind::kEvent; })) {
        EXPECT_TRUE(events.empty()) << ext << ": a batch without events has none";
      }
    }
    EXPECT_EQ(seen, (std::vector<OsEvent>{items[1].event, items[3].event})) << ext;
    EXPECT_TRUE(reader->events().empty()) << ext << ": the end of the stream has none";
  }
}

TEST(TraceEvents, StreamsWithoutEventsHaveNone) {
  ScratchDir dir;
  test::write_trace(dir.path("r.sst"), test::random_records(3, 10'000));
  auto reader = open_trace(dir.path("r.sst"));
  std::vector<TraceRecord> batch(1000);
  while (reader->read(batch.data(), batch.size())) EXPECT_TRUE(reader->events().empty());
}

// Hand-encoded from docs/trace-format.md (the example there), so these check the specification.
const std::string kHeader = bytes({0x89, 'S', 'S', 'T', 1, 0, 0, 0});
const std::string kRead = bytes({0x08, 0x80, 0x40});  // R 0x1000 8
// E mmap 0x7f0000000000 0x21000 rw- private,anonymous: tag 0x83, gap 0, address, length, prot 3,
// flags 0x22.
const std::string kMmap =
    bytes({0x83, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0xe0, 0x1f, 0x80, 0xa0, 0x08, 0x03, 0x22});
const std::string kCreate = bytes({0x80, 0x03, 0x05, 0x01});  // E create 5 fork +3
const std::string kExit = bytes({0x82, 0x00});                // E exit
// End: 4 records, 3 instructions; check sum 0x1800 + 0x7f000006b400 (mmap: 0x7f0000000000 +
// 3 * 0x21000 + 5 * 3 + 7 * 0x22 + (0x83 << 8) + 3) + 0x3800b (create: 5 + 3 * 1 + (3 << 16) +
// (0x80 << 8) + 3) + 0x8203 (exit: (0x82 << 8) + 3) = 0x7f00000ace0e.
const std::string kEnd = bytes({0xff, 0x04, 0x03, 0x0e, 0xce, 0x0a, 0x00, 0x00, 0x7f, 0x00, 0x00});

TEST(TraceEvents, HandEncodedBinaryEventsDecode) {
  ScratchDir dir;
  const std::vector<Item> expected = {
      Item::ref(RefKind::kRead, 8, 0x1000),
      Item::ev(OsEvent::mmap(0x7f0000000000, 0x21000, 3, kPrivAnon)),
      Item::ev(OsEvent::create(5, StreamOrigin::kFork), 3),
      Item::ev(OsEvent::exit()),
  };
  const std::string all = kHeader + kRead + kMmap + kCreate + kExit + kEnd;
  test::write_file(dir.path("ok.sst"), all);
  EXPECT_EQ(test::read_items(dir.path("ok.sst")), expected);
  EXPECT_FALSE(expected[1].event.file);
  test::write_items(dir.path("w.sst"), expected);
  EXPECT_EQ(test::read_file(dir.path("w.sst")), all);
}

TEST(TraceEvents, TextSyntaxOfEveryKind) {
  ScratchDir dir;
  test::write_file(dir.path("e.sstx"),
                   "F 0x401000 2\n"
                   "E create 12 fork\n"
                   "E create 4294967295 vfork +3   # a comment\n"
                   "  E\tcreate 13 thread\n"
                   "E exec\n"
                   "E mmap 0x7f0000000000 0x21000 rw- private,anonymous\n"
                   "E mmap 0x400000 0X1000 r-x fixed,private +2\n"
                   "E mmap 0x7ffd0000 0x100000 rw- stack,growsdown,anonymous,private,populate\n"
                   "E mmap 0x0 0x1000 --- shared\n"
                   "E munmap 0x7f0000000000 0x21000\n"
                   "E mprotect 0x400000 0x1000 r--\n"
                   "E mprotect 0x400000 0x0 ---\n"
                   "E brk 0x5555556000\n"
                   "E mremap 0x7f0000000000 0x21000 0x7f1000000000 0x42000 maymove\n"
                   "E mremap 0x1000 0x1000 0x1000 0x2000 -\n"
                   "E mremap 0x1000 0x1000 0x9000 0x2000 fixed,maymove,dontunmap\n"
                   "E switch 7\n"
                   "E exit +4294967295");
  const std::vector<Item> expected = {
      Item::ref(RefKind::kFetch, 2, 0x401000),
      Item::ev(OsEvent::create(12, StreamOrigin::kFork)),
      Item::ev(OsEvent::create(UINT32_MAX, StreamOrigin::kVfork), 3),
      Item::ev(OsEvent::create(13, StreamOrigin::kThread)),
      Item::ev(OsEvent::exec()),
      Item::ev(OsEvent::mmap(0x7f0000000000, 0x21000, 3, kPrivAnon)),
      Item::ev(OsEvent::mmap(0x400000, 0x1000, 5, OsEvent::kMapFixed | OsEvent::kMapPrivate), 2),
      Item::ev(OsEvent::mmap(0x7ffd0000, 0x100000, 3,
                             kPrivAnon | OsEvent::kMapStack | OsEvent::kMapGrowsDown |
                                 OsEvent::kMapPopulate)),
      Item::ev(OsEvent::mmap(0, 0x1000, 0, OsEvent::kMapShared)),
      Item::ev(OsEvent::munmap(0x7f0000000000, 0x21000)),
      Item::ev(OsEvent::mprotect(0x400000, 0x1000, 1)),
      Item::ev(OsEvent::mprotect(0x400000, 0, 0)),
      Item::ev(OsEvent::brk(0x5555556000)),
      Item::ev(OsEvent::mremap(0x7f0000000000, 0x21000, 0x7f1000000000, 0x42000, 1)),
      Item::ev(OsEvent::mremap(0x1000, 0x1000, 0x1000, 0x2000, 0)),
      Item::ev(OsEvent::mremap(0x1000, 0x1000, 0x9000, 0x2000, 7)),
      Item::ev(OsEvent::switch_to(7)),
      Item::ev(OsEvent::exit(), UINT32_MAX),
  };
  const auto back = test::read_items(dir.path("e.sstx"));
  EXPECT_EQ(back, expected);
  EXPECT_TRUE(back[6].event.file);
  EXPECT_TRUE(back[8].event.file);  // a shared file mapping
  // The writer's canonical form: flags in bit order, lower-case hex.
  test::write_items(dir.path("w.sstx"), std::vector<Item>(expected.begin() + 5,
                                                          expected.begin() + 8));
  EXPECT_EQ(test::read_file(dir.path("w.sstx")),
            "# shadowsim text trace (sstx 1): KIND ADDRESS SIZE [+GAP] or E EVENT FIELDS [+GAP]\n"
            "E mmap 0x7f0000000000 0x21000 rw- private,anonymous\n"
            "E mmap 0x400000 0x1000 r-x private,fixed +2\n"
            "E mmap 0x7ffd0000 0x100000 rw- private,anonymous,growsdown,populate,stack\n");
}

struct BadEvent {
  const char* name;
  std::string line;  // line 2 of a text trace
  std::vector<const char*> message;
};

class MalformedTextEvents : public ::testing::TestWithParam<BadEvent> {};

TEST_P(MalformedTextEvents, MessageNamesFileLineAndForm) {
  ScratchDir dir;
  const std::string path = dir.path("bad.sstx");
  test::write_file(path, "R 0x10 8\n" + GetParam().line + "\nR 0x18 8\n");
  const std::string msg = test::error_of([&] { test::read_items(path); });
  EXPECT_NE(msg.find(path + ":2: "), std::string::npos) << msg;
  for (const char* part : GetParam().message) EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedTextEvents,
    ::testing::ValuesIn(std::vector<BadEvent>{
        {"no_word", "E", {"no event after E", "create, exec, exit, mmap"}},
        {"unknown_word", "E fork 3", {"event 'fork'", "WHAT one of create"}},
        {"lower_case_e", "e brk 0x1000", {"kind 'e'", "or an OS event 'E WHAT ...'"}},
        {"too_few", "E mmap 0x1000 0x1000 rw-", {"3 fields after 'mmap'",
                                                 "'E mmap ADDRESS LENGTH PROT FLAGS [+GAP]'"}},
        {"too_many", "E exec now", {"1 field after 'exec'", "'E exec [+GAP]'"}},
        {"gap_only_last", "E exit +1 +2", {"1 field after 'exit'"}},
        {"bad_gap", "E exit +4294967296", {"gap '+4294967296'"}},
        {"address_no_0x", "E munmap 1000 0x1000", {"ADDRESS '1000'", "0x and 1..16 hex"}},
        {"length_17_digits", "E munmap 0x1000 0x10000000000000000", {"LENGTH"}},
        {"prot_letters", "E mprotect 0x1000 0x1000 rwz", {"PROT 'rwz'", "like rw-"}},
        {"prot_order", "E mprotect 0x1000 0x1000 wr-", {"PROT 'wr-'"}},
        {"flag_unknown", "E mmap 0x1000 0x1000 rw- private,huge", {"FLAGS 'private,huge'",
                                                                   "growsdown"}},
        {"flag_twice", "E mmap 0x1000 0x1000 rw- private,private", {"FLAGS"}},
        {"flag_empty", "E mmap 0x1000 0x1000 rw- private,", {"FLAGS"}},
        {"shared_and_private", "E mmap 0x1000 0x1000 rw- shared,private,anonymous",
         {"exactly one of shared and private"}},
        {"neither", "E mmap 0x1000 0x1000 rw- anonymous", {"exactly one of shared and private"}},
        {"mmap_dash", "E mmap 0x1000 0x1000 rw- -", {"exactly one of shared and private"}},
        {"wraps", "E munmap 0xfffffffffffff000 0x2000", {"wraps past 2^64"}},
        {"mremap_flag", "E mremap 0x1000 0x1000 0x2000 0x1000 move", {"FLAGS 'move'",
                                                                      "maymove, fixed"}},
        {"create_initial", "E create 3 initial", {"HOW 'initial'", "fork, vfork or thread"}},
        {"create_big_id", "E create 4294967296 fork", {"CHILD '4294967296'", "0..4294967295"}},
        {"create_hex_id", "E create 0x3 fork", {"CHILD '0x3'"}},
        {"switch_missing", "E switch", {"0 fields after 'switch'", "'E switch STREAM [+GAP]'"}},
    }),
    [](const auto& info) { return std::string(info.param.name); });

struct BadRecord {
  const char* name;
  std::string event;  // bytes in place of the second record of kHeader + kRead + ... + end
  std::vector<const char*> message;
};

class MalformedBinaryEvents : public ::testing::TestWithParam<BadRecord> {};

TEST_P(MalformedBinaryEvents, MessageNamesFileAndRecord) {
  ScratchDir dir;
  const std::string path = dir.path("bad.sst");
  test::write_file(path, kHeader + kRead + GetParam().event + kExit + kEnd);
  const std::string msg = test::error_of([&] { test::read_items(path); });
  EXPECT_NE(msg.find(path + ": record 1 (byte 11): "), std::string::npos) << msg;
  for (const char* part : GetParam().message) EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedBinaryEvents,
    ::testing::ValuesIn(std::vector<BadRecord>{
        {"reserved_tag", bytes({0x8a, 0x00}), {"tag 0x8a is reserved", "OS events"}},
        {"create_how_0", bytes({0x80, 0x00, 0x05, 0x00}), {"create: how 'initial'"}},
        {"create_how_4", bytes({0x80, 0x00, 0x05, 0x04}), {"create: field 2 is 0x4"}},
        {"create_id_33_bits", bytes({0x80, 0x00, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01}),
         {"create: field 1 is 0x100000000", "E create CHILD HOW"}},
        {"mmap_prot_8", bytes({0x83, 0x00, 0x80, 0x20, 0x80, 0x20, 0x08, 0x22}),
         {"mmap: field 3 is 0x8"}},
        {"mmap_unknown_flag", bytes({0x83, 0x00, 0x80, 0x20, 0x80, 0x20, 0x03, 0xa2, 0x10}),
         {"mmap: flags 0x822 has bits outside"}},
        {"mmap_shared_private", bytes({0x83, 0x00, 0x80, 0x20, 0x80, 0x20, 0x03, 0x23}),
         {"exactly one of shared and private"}},
        {"mremap_flag_8", bytes({0x87, 0x00, 0x01, 0x01, 0x01, 0x01, 0x08}),
         {"mremap: flags 0x8"}},
        {"gap_33_bits", bytes({0x82, 0x80, 0x80, 0x80, 0x80, 0x10}), {"exit event: gap"}},
        {"overlong_field", bytes({0x86, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                  0x80, 0x80, 0x01}),
         {"brk event: field 1 is not a varint"}},
        {"munmap_wraps", bytes({0x84, 0x00, 0x80, 0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                0x01, 0x80, 0x40}),
         {"munmap: range 0xfffffffffffff000 + 0x2000 wraps"}},
    }),
    [](const auto& info) { return std::string(info.param.name); });

TEST(TraceEvents, BinaryEventCutShortOrChanged) {
  ScratchDir dir;
  // The stream ends inside the mmap record.
  const std::string cut = dir.path("cut.sst");
  test::write_file(cut, kHeader + kRead + kMmap.substr(0, 6));
  std::string msg = test::error_of([&] { test::read_items(cut); });
  EXPECT_NE(msg.find(cut + ": record 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("inside a record"), std::string::npos) << msg;
  // A changed field (flags private,anonymous -> private,anonymous,fixed): only the check sum
  // tells.
  std::string changed = kMmap;
  changed.back() = 0x32;
  const std::string sum = dir.path("sum.sst");
  test::write_file(sum, kHeader + kRead + changed + kCreate + kExit + kEnd);
  msg = test::error_of([&] { test::read_items(sum); });
  EXPECT_NE(msg.find(sum + ": record 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("check sum"), std::string::npos) << msg;
  // Two fields swapped (address and length): the weights tell.
  const std::string swapped_event = bytes({0x84, 0x00, 0x80, 0x20, 0x80, 0x40});  // munmap
  const std::string swapped_back = bytes({0x84, 0x00, 0x80, 0x40, 0x80, 0x20});
  test::write_items(dir.path("u.sst"), {Item::ev(OsEvent::munmap(0x1000, 0x2000))});
  std::string u = test::read_file(dir.path("u.sst"));
  ASSERT_NE(u.find(swapped_event), std::string::npos);
  u.replace(u.find(swapped_event), swapped_event.size(), swapped_back);
  test::write_file(dir.path("u.sst"), u);
  msg = test::error_of([&] { test::read_items(dir.path("u.sst")); });
  EXPECT_NE(msg.find("check sum"), std::string::npos) << msg;
}

// Random damage to a trace with events ends in a clean Error naming the file and the record, or
// in a stream that decodes; never a crash or a read outside the data (run under ASan too).
TEST(TraceEvents, DamagedBinaryTracesWithEventsFailCleanly) {
  ScratchDir dir;
  const std::string path = dir.path("f.sst");
  test::write_items(path, test::random_items(8, 300, 0.3));
  const std::string good = test::read_file(path);
  Rng rng(77);
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    const int what = static_cast<int>(rng.below(3));
    const size_t at = 8 + rng.below(bad.size() - 8);
    if (what == 0) bad[at] = static_cast<char>(rng.next());
    if (what == 1) bad.resize(at);
    if (what == 2) bad.insert(at, 1, static_cast<char>(rng.next()));
    test::write_file(path, bad);
    try {
      auto reader = open_trace(path);
      test::read_items(*reader, 1 + rng.below(64));
    } catch (const Error& e) {
      ++errors;
      ASSERT_NE(std::string(e.what()).find(path + ": record "), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 2950);
}

TEST(TraceEvents, WritersRefuseEventsTheFormatsCannotHold) {
  ScratchDir dir;
  for (const char* ext : {".sst", ".sstx"}) {
    const std::string path = dir.path(std::string("w") + ext);
    auto w = create_trace(path);
    w->write({RefKind::kRead, 8, 0, 0x10});
    const OsEvent good = OsEvent::exit();
    const TraceRecord ev{RefKind::kEvent, 0, 0, 1};
    std::string msg = test::error_of([&] { w->write(&ev, 1, &good, 1); });
    EXPECT_NE(msg.find(path + ": record 1: event index 1, but the batch has 1 event"),
              std::string::npos) << msg;
    msg = test::error_of([&] { w->write({RefKind::kEvent, 0, 0, 0}); });  // no events given
    EXPECT_NE(msg.find("the batch has 0 events"), std::string::npos) << msg;
    const TraceRecord sized{RefKind::kEvent, 4, 0, 0};
    msg = test::error_of([&] { w->write(&sized, 1, &good, 1); });
    EXPECT_NE(msg.find("event record with size 4; expected 0"), std::string::npos) << msg;
    OsEvent bad = OsEvent::mmap(0x1000, 0x1000, 3, kPrivAnon);
    bad.file = true;
    msg = test::error_of([&] { w->write_event(bad); });
    EXPECT_NE(msg.find(path + ": record 1: mmap: file true"), std::string::npos) << msg;
    bad = OsEvent::munmap(0x1000, 0x1000);
    bad.prot = 3;
    msg = test::error_of([&] { w->write_event(bad); });
    EXPECT_NE(msg.find("munmap: prot is 0x3; expected 0 (munmap has no prot)"), std::string::npos)
        << msg;
    bad = OsEvent::create(3, StreamOrigin::kInitial);
    msg = test::error_of([&] { w->write_event(bad); });
    EXPECT_NE(msg.find("create: how 'initial'"), std::string::npos) << msg;
    bad.kind = static_cast<OsEventKind>(kOsEventKinds);
    msg = test::error_of([&] { w->write_event(bad); });
    EXPECT_NE(msg.find("event kind " + std::to_string(kOsEventKinds) + "; expected 0.." +
                       std::to_string(kOsEventKinds - 1)),
              std::string::npos) << msg;
    // Nothing of the refused records was written: the stream is the read and one exit.
    w->write_event(good, 2);
    EXPECT_EQ(w->records(), 2u);
    EXPECT_EQ(w->events(), 1u);
    w->close();
    EXPECT_EQ(test::read_items(path), (std::vector<Item>{Item::ref(RefKind::kRead, 8, 0x10),
                                                         Item::ev(good, 2)}));
  }
}

// The instruction count of a stream with events: gaps of every record plus fetch records.
TEST(TraceEvents, InstructionsCountEventGaps) {
  ScratchDir dir;
  auto items = test::random_items(9, 30'000, 0.1);
  for (Item& i : items) i.record.gap %= 1000;  // no overflow when folded below
  uint64_t expected = 0, events = 0;
  for (const Item& i : items) {
    expected += i.record.gap + (i.record.kind == RefKind::kFetch ? 1 : 0);
    events += i.record.kind == RefKind::kEvent;
  }
  ASSERT_GT(events, 1000u);
  for (const char* ext : {".sst", ".sstx"}) {
    const std::string path = dir.path(std::string("i") + ext);
    test::write_items(path, items);
    auto reader = open_trace(path);
    uint64_t counted = 0;
    std::vector<TraceRecord> batch(4096);
    while (const size_t n = reader->read(batch.data(), batch.size())) {
      for (size_t k = 0; k < n; ++k) counted += instructions_of(batch[k]);
    }
    EXPECT_EQ(counted, expected) << ext;
    auto again = open_trace(path);
    const TraceSummary s = summarize_trace(*again);
    EXPECT_EQ(s.instructions, expected) << ext;
    EXPECT_EQ(s.records, items.size()) << ext;
    EXPECT_EQ(s.events, events) << ext;
    uint64_t by_event = 0;
    for (uint64_t c : s.by_event) by_event += c;
    EXPECT_EQ(by_event, events) << ext;
    EXPECT_EQ(s.by_kind[0] + s.by_kind[1] + s.by_kind[2], items.size() - events) << ext;
  }
}

// drop_fetches folds fetches into the next kept record, events included, and passes events
// through; drop_events folds the events' gaps the same way.
TEST(TraceEvents, DroppersFoldIntoTheNextKeptRecord) {
  ScratchDir dir;
  auto items = test::random_items(13, 20'000, 0.1);
  for (Item& i : items) i.record.gap %= 1000;
  test::write_items(dir.path("d.sst"), items);
  for (RefKind dropped : {RefKind::kFetch, RefKind::kEvent}) {
    std::vector<Item> expected;
    uint64_t pending = 0;
    for (const Item& i : items) {
      if (i.record.kind == dropped) {
        pending += instructions_of(i.record);
        continue;
      }
      Item k = i;
      k.record.gap = static_cast<uint32_t>(pending + i.record.gap);
      pending = 0;
      expected.push_back(k);
    }
    TraceOpenOptions o;
    o.fetches = dropped != RefKind::kFetch;
    o.events = dropped != RefKind::kEvent;
    for (size_t batch : {1, 7, 4096}) {
      EXPECT_EQ(test::read_items(dir.path("d.sst"), o, batch), expected)
          << to_string(dropped) << " batch " << batch;
    }
  }
  // Both at once: only reads and writes remain.
  TraceOpenOptions both;
  both.fetches = both.events = false;
  for (const Item& i : test::read_items(dir.path("d.sst"), both, 100)) {
    EXPECT_TRUE(i.record.kind == RefKind::kRead || i.record.kind == RefKind::kWrite);
  }
}

TEST(TraceEvents, EventTextAndNames) {
  EXPECT_EQ(event_text(OsEvent::mmap(0x7f0000000000, 0x21000, 3, kPrivAnon)),
            "mmap 0x7f0000000000 0x21000 rw- private,anonymous");
  EXPECT_EQ(event_text(OsEvent::create(4, StreamOrigin::kThread)), "create 4 thread");
  EXPECT_EQ(event_text(OsEvent::mremap(0x1000, 0x1000, 0x2000, 0x3000, 0)),
            "mremap 0x1000 0x1000 0x2000 0x3000 -");
  EXPECT_EQ(event_text(OsEvent::brk(0)), "brk 0x0");
  EXPECT_EQ(event_text(OsEvent::switch_to(2)), "switch 2");
  EXPECT_EQ(prot_text(7), "rwx");
  EXPECT_EQ(prot_text(0), "---");
  EXPECT_EQ(kind_letter(RefKind::kEvent), 'E');
  EXPECT_STREQ(to_string(RefKind::kEvent), "event");
  EXPECT_TRUE(OsEvent::mmap(0, 0x1000, 1, OsEvent::kMapShared).file);
  EXPECT_FALSE(OsEvent::mmap(0, 0x1000, 1, kPrivAnon).file);
  for (int k = 0; k < kOsEventKinds; ++k) {
    EXPECT_STRNE(to_string(static_cast<OsEventKind>(k)), "?");
  }
  EXPECT_EQ(sizeof(TraceRecord), 16u);
}

}  // namespace
}  // namespace shadowsim
