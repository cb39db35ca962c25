// Helpers shared by the trace tests: a scratch folder per test, file I/O, random records.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "workloads/os_event.h"
#include "workloads/trace_cli.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_record.h"
#include "workloads/trace_writer.h"

namespace shadowsim::test {

// `shadowsim trace ARGS...` in-process: its standard output; the exit status in *status and the
// standard error in *err.
inline std::string run_trace_cli(std::vector<std::string> args, int* status,
                                 std::string* err = nullptr) {
  args.insert(args.begin(), "trace");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream out, e;
  *status = run_trace_command(static_cast<int>(argv.size()), argv.data(), out, e);
  if (err) *err = e.str();
  return out.str();
}

// A fresh folder for the running test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("shadowsim-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
            info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Records shaped like real ones (runs of sequential fetches, data near the last data address,
// small sizes and gaps) mixed with extremes (addresses 0 and ~0, far jumps, sizes up to 255,
// gaps up to 2^32-1), so every branch of the encodings is exercised.
inline std::vector<TraceRecord> random_records(uint64_t seed, size_t n) {
  Rng rng(seed);
  std::vector<TraceRecord> v;
  v.reserve(n);
  uint64_t pc = 0x400000, data = 0x7ffd0000;
  for (size_t i = 0; i < n; ++i) {
    TraceRecord r;
    const uint64_t k = rng.below(10);
    r.kind = k < 6 ? RefKind::kFetch : k < 9 ? RefKind::kRead : RefKind::kWrite;
    if (r.kind == RefKind::kFetch) {
      r.size = static_cast<uint8_t>(1 + rng.below(15));
      if (rng.chance(0.1)) pc = rng.chance(0.5) ? rng.next() : pc + rng.below(4096) - 2048;
      r.va = pc;
      pc += r.size;
    } else {
      const uint64_t sizes[] = {1, 2, 4, 8, 16, 32, 64};
      r.size = static_cast<uint8_t>(rng.chance(0.05) ? 1 + rng.below(255) : sizes[rng.below(7)]);
      if (rng.chance(0.02)) data = rng.chance(0.5) ? 0 : ~0ULL - rng.below(16);
      else if (rng.chance(0.1)) data = rng.next();
      else data += rng.below(512) - 256;
      r.va = data;
    }
    const uint64_t g = rng.below(100);
    r.gap = g < 70 ? 0 : g < 98 ? static_cast<uint32_t>(rng.below(300))
                                : static_cast<uint32_t>(UINT32_MAX - rng.below(2));
    v.push_back(r);
  }
  return v;
}

inline void write_trace(const std::string& path, const std::vector<TraceRecord>& records) {
  auto w = create_trace(path);
  w->write(records.data(), records.size());
  w->close();
}

// Reads the whole stream with batches of `batch` records.
inline std::vector<TraceRecord> read_all(TraceReader& reader, size_t batch = 4096) {
  std::vector<TraceRecord> all, buf(batch);
  while (const size_t n = reader.read(buf.data(), buf.size())) {
    EXPECT_LE(n, batch);
    all.insert(all.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
  }
  EXPECT_EQ(reader.read(buf.data(), buf.size()), 0u) << "end of stream must stay the end";
  return all;
}

inline std::vector<TraceRecord> read_all(const std::string& path,
                                         const TraceOpenOptions& options = {}) {
  auto reader = open_trace(path, options);
  return read_all(*reader);
}

// A record together with the event it stands for: what a stream holds, independent of how it was
// batched (a kEvent record's va, an index into one batch's events, is 0 here).
struct Item {
  TraceRecord record;
  OsEvent event;  // kEvent records only

  static Item ref(RefKind kind, uint8_t size, uint64_t va, uint32_t gap = 0) {
    return {{kind, size, gap, va}, {}};
  }
  static Item ev(const OsEvent& e, uint32_t gap = 0) { return {{RefKind::kEvent, 0, gap, 0}, e}; }
  bool operator==(const Item& o) const {
    return record == o.record && (record.kind != RefKind::kEvent || event == o.event);
  }
};

// An OS event with random, well-formed fields; extremes included.
inline OsEvent random_event(Rng& rng) {
  const auto kind = static_cast<OsEventKind>(rng.below(kOsEventKinds));
  const uint64_t addr = rng.chance(0.1) ? ~0ULL - 4095 : rng.chance(0.8) ? (rng.next() >> 17) << 12
                                                                         : rng.next();
  uint64_t length = rng.chance(0.1) ? rng.next() : 1 + rng.below(1 << 24);
  if (addr + (length - 1) < addr) length = ~addr + 1;  // no wrap past 2^64 (length >= 1)
  const auto prot = static_cast<uint8_t>(rng.below(8));
  const auto stream = static_cast<uint32_t>(rng.chance(0.1) ? UINT32_MAX : rng.below(100000));
  switch (kind) {
    case OsEventKind::kCreate:
      return OsEvent::create(stream, static_cast<StreamOrigin>(1 + rng.below(3)));
    case OsEventKind::kExec: return OsEvent::exec();
    case OsEventKind::kExit: return OsEvent::exit();
    case OsEventKind::kMmap: {
      uint32_t flags = rng.chance(0.7) ? OsEvent::kMapPrivate : OsEvent::kMapShared;
      for (uint32_t f : {OsEvent::kMapFixed, OsEvent::kMapAnonymous, OsEvent::kMapGrowsDown,
                         OsEvent::kMapPopulate, OsEvent::kMapStack}) {
        if (rng.chance(0.3)) flags |= f;
      }
      return OsEvent::mmap(addr, length, prot, flags);
    }
    case OsEventKind::kMunmap: return OsEvent::munmap(addr, length);
    case OsEventKind::kMprotect: return OsEvent::mprotect(addr, length, prot);
    case OsEventKind::kBrk: return OsEvent::brk(addr);
    case OsEventKind::kMremap: {
      const uint64_t new_addr = (rng.next() >> 17) << 12;
      return OsEvent::mremap(addr, length, new_addr, 1 + rng.below(1 << 20),
                             static_cast<uint32_t>(rng.below(8)));
    }
    case OsEventKind::kSwitch: return OsEvent::switch_to(stream);
    case OsEventKind::kWait: return OsEvent::wait_for(stream);
  }
  return OsEvent::exit();
}

// random_records() with OS events mixed in (about `share` of the items), gaps included.
inline std::vector<Item> random_items(uint64_t seed, size_t n, double share = 0.05) {
  Rng rng(seed ^ 0x5eed);
  std::vector<Item> items;
  for (const TraceRecord& r : random_records(seed, n)) {
    if (rng.chance(share)) {
      const uint32_t gap = rng.chance(0.7)   ? 0
                           : rng.chance(0.9) ? static_cast<uint32_t>(rng.below(50))
                                             : UINT32_MAX;
      items.push_back(Item::ev(random_event(rng), gap));
    }
    items.push_back({r, {}});
  }
  return items;
}

// Writes items through the batch API in chunks of `chunk` records (a batch's events are indexed
// from 0, as a reader gives them).
inline void write_items(TraceWriter& w, const std::vector<Item>& items, size_t chunk = 1000) {
  for (size_t at = 0; at < items.size(); at += chunk) {
    std::vector<TraceRecord> records;
    std::vector<OsEvent> events;
    for (size_t i = at; i < std::min(items.size(), at + chunk); ++i) {
      TraceRecord r = items[i].record;
      if (r.kind == RefKind::kEvent) {
        r.va = events.size();
        events.push_back(items[i].event);
      }
      records.push_back(r);
    }
    w.write(records.data(), records.size(), events);
  }
}

inline void write_items(const std::string& path, const std::vector<Item>& items) {
  auto w = create_trace(path);
  write_items(*w, items);
  w->close();
}

// Reads the whole stream with batches of `batch` records, checking each batch's events(): every
// kEvent record indexes it, in order from 0, and it holds nothing else.
inline std::vector<Item> read_items(TraceReader& reader, size_t batch = 4096) {
  std::vector<Item> all;
  std::vector<TraceRecord> buf(batch);
  while (const size_t n = reader.read(buf.data(), buf.size())) {
    EXPECT_LE(n, batch);
    const std::vector<OsEvent>& events = reader.events();
    size_t next = 0;
    for (size_t i = 0; i < n; ++i) {
      Item item{buf[i], {}};
      if (item.record.kind == RefKind::kEvent) {
        EXPECT_EQ(item.record.va, next) << "record " << all.size();
        EXPECT_EQ(item.record.size, 0u);
        if (item.record.va >= events.size()) {
          ADD_FAILURE() << "event index " << item.record.va << " of " << events.size();
          return all;
        }
        item.event = events[item.record.va];
        item.record.va = 0;
        ++next;
      }
      all.push_back(item);
    }
    EXPECT_EQ(events.size(), next) << "events() holds only the batch's events";
  }
  EXPECT_EQ(reader.read(buf.data(), buf.size()), 0u) << "end of stream must stay the end";
  return all;
}

inline std::vector<Item> read_items(const std::string& path, const TraceOpenOptions& options = {},
                                    size_t batch = 4096) {
  auto reader = open_trace(path, options);
  return read_items(*reader, batch);
}

// The message of the Error that f throws (fails the test if none is thrown).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected shadowsim::Error";
  return {};
}

}  // namespace shadowsim::test

namespace shadowsim {
inline std::ostream& operator<<(std::ostream& o, const TraceRecord& r) {
  return o << kind_letter(r.kind) << " 0x" << std::hex << r.va << std::dec << ' '
           << unsigned{r.size} << " +" << r.gap;
}
inline std::ostream& operator<<(std::ostream& o, const OsEvent& e) {
  return o << event_text(e) << (e.file ? " (file)" : "");
}
namespace test {
inline std::ostream& operator<<(std::ostream& o, const Item& i) {
  if (i.record.kind == RefKind::kEvent) return o << "E " << i.event << " +" << i.record.gap;
  return o << i.record;
}
}  // namespace test
}  // namespace shadowsim
