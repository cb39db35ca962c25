// The binary format (.sst), version 1: reader and writer. Layout in docs/trace-format.md.
#include <cstring>

#include <fmt/format.h>

#include "workloads/binary_format.h"
#include "workloads/trace_formats.h"

namespace shadowsim {
namespace {

using namespace sst;

static_assert(kMaxEventBytes <= static_cast<int>(InputBuffer::kPadding),
              "an event record cut short must decode into the window's padding");

// Address prediction: a fetch is predicted to follow the previous fetch (va + size), a read or
// write to hit the previous data address. Sequential code then costs one byte of delta.
struct Predictor {
  uint64_t next[2] = {0, 0};  // [0] data, [1] fetch
};

class BinaryReader final : public TraceReader {
 public:
  explicit BinaryReader(std::unique_ptr<InputBuffer> in) : in_(std::move(in)) { read_header(); }

  size_t read(TraceRecord* out, size_t max) override {
    events_.clear();
    size_t n = 0;
    const uint8_t* p = in_->pos();
    const uint8_t* end = in_->end();
    uint64_t instructions = 0, check = 0;
    // Locals, not members: stores into `out` could alias members and force reloads.
    Predictor pred = pred_;
    if (ended_) return 0;
    while (n < max) {
      if (end - p < kMaxRecordBytes && !in_->exhausted()) {
        in_->set_pos(p);
        refill(index_ + n);
        p = in_->pos();
        end = in_->end();
        continue;
      }
      // Past the end of the data the window holds zero padding: a record cut short decodes
      // into it harmlessly and is caught by the p > end check below.
      if (p >= end) {
        fail(p, index_ + n, "the data ends without the end marker (truncated trace?)");
      }
      const uint8_t* const start = p;
      const uint8_t tag = *p++;
      if (tag >= kTagFirstEvent) {  // an OS event, the end marker or a reserved tag
        in_->set_pos(start);
        index_ += n;
        instructions_ += instructions;
        check_ += check;
        pred_ = pred;
        // An event ends the batch: events are rare, and a loop that only ever leaves here keeps
        // the access-record path as fast as it was without them.
        if (tag <= kTagLastEvent) return n + read_event(out + n);
        read_special(tag);
        return n;
      }
      const unsigned kind = tag >> kTagKindShift;
      if (kind > 2) fail(start, index_ + n, fmt::format("tag {:#04x} has kind 3", tag));
      uint64_t size = tag & kTagSizeMask;
      if (size == 0) {
        size = *p++;
        if (size == 0) fail(start, index_ + n, "size byte 0; expected 1..255");
      }
      uint64_t gap = 0;
      if (tag & kTagGap) {
        p = get_varint(p, &gap);
        if (!p || gap > UINT32_MAX) {
          fail(start, index_ + n, "gap is not a varint of at most 32 bits");
        }
      }
      uint64_t delta;
      p = get_varint(p, &delta);
      if (!p) fail(start, index_ + n, "address delta is not a varint of at most 64 bits");
      if (p > end) fail(start, index_ + n, "the data ends inside a record (truncated trace?)");
      const unsigned fetch = kind >> 1;
      const uint64_t va = pred.next[fetch] + unzigzag(delta);
      pred.next[fetch] = va + (fetch ? size : 0);
      TraceRecord& r = out[n++];
      r.kind = static_cast<RefKind>(kind);
      r.size = static_cast<uint8_t>(size);
      r.gap = static_cast<uint32_t>(gap);
      r.va = va;
      instructions += gap + fetch;
      check += check_term(kind, size, gap, va);
    }
    in_->set_pos(p);
    index_ += n;
    instructions_ += instructions;
    check_ += check;
    pred_ = pred;
    return n;
  }

  const std::vector<OsEvent>& events() const override { return events_; }
  const std::string& path() const override { return in_->path(); }

 private:
  [[noreturn]] void fail(const uint8_t* at, uint64_t record, const std::string& what) const {
    throw Error(fmt::format("{}: record {} (byte {}): {}", in_->path(), record, in_->offset(at),
                            what));
  }

  void refill(uint64_t record) {
    try {
      in_->fill(kMaxRecordBytes);
    } catch (const SourceError& e) {
      fail(in_->pos(), record, e.what());
    }
  }

  void read_header() {
    refill(0);
    const uint8_t* p = in_->pos();
    const size_t have = static_cast<size_t>(in_->end() - p);
    if (have < 4 || std::memcmp(p, kMagic, 4) != 0) {
      std::string got;
      for (size_t i = 0; i < std::min<size_t>(have, 4); ++i) got += fmt::format(" {:02x}", p[i]);
      throw Error(fmt::format("{}: not a shadowsim binary trace: starts with{}; expected the magic "
                              "89 53 53 54 (\"\\x89SST\")", in_->path(),
                              have ? got : std::string(" nothing (empty file)")));
    }
    if (have < kHeaderBytes) {
      throw Error(fmt::format("{}: header cut short: {} of {} bytes", in_->path(), have,
                              kHeaderBytes));
    }
    if (p[4] != kVersion) {
      throw Error(fmt::format("{}: binary trace format version {}; this build reads version {}",
                              in_->path(), p[4], kVersion));
    }
    if (p[5] != 0 || p[6] != 0 || p[7] != 0) {
      throw Error(fmt::format("{}: header bytes 5..7 are {:02x} {:02x} {:02x}; expected 0 in "
                              "version 1", in_->path(), p[5], p[6], p[7]));
    }
    in_->set_pos(p + kHeaderBytes);
  }

  // The OS-event record at in_->pos(): appended to events_, its kEvent record written to *r,
  // counted in index_, instructions_ and check_. Returns 1, the records it adds to the batch.
  [[gnu::noinline]] size_t read_event(TraceRecord* r) {
    const uint64_t record = index_;
    try {
      in_->fill(kMaxEventBytes);
    } catch (const SourceError& e) {
      fail(in_->pos(), record, e.what());
    }
    const uint8_t* const start = in_->pos();
    const uint8_t tag = *start;
    const OsEventKind kind = static_cast<OsEventKind>(tag - kTagFirstEvent);
    const EventLayout& layout = event_layout(kind);
    uint64_t gap;
    const uint8_t* p = get_varint(start + 1, &gap);
    if (!p || gap > UINT32_MAX) {
      fail(start, record, fmt::format("{} event: gap is not a varint of at most 32 bits",
                                      to_string(kind)));
    }
    uint64_t fields[kMaxEventFields];
    for (int i = 0; i < layout.count; ++i) {
      p = get_varint(p, &fields[i]);
      if (!p) {
        fail(start, record, fmt::format("{} event: field {} is not a varint of at most 64 bits",
                                        to_string(kind), i + 1));
      }
    }
    if (p > in_->end()) fail(start, record, "the data ends inside a record (truncated trace?)");
    OsEvent e;
    std::string problem;
    if (!event_from_fields(kind, fields, &e, &problem)) fail(start, record, problem);
    in_->set_pos(p);
    *r = TraceRecord{RefKind::kEvent, 0, static_cast<uint32_t>(gap), events_.size()};
    events_.push_back(e);
    ++index_;
    instructions_ += gap;
    check_ += event_check_term(tag, gap, fields, layout.count);
    return 1;
  }

  // A tag above the events at in_->pos(): the end marker, or a tag reserved for later versions.
  void read_special(uint8_t tag) {
    refill(index_);
    const uint8_t* const start = in_->pos();
    if (tag != kTagEnd) {
      fail(start, index_, fmt::format("tag {:#04x} is reserved (0x{:02x}..0xfe are for OS events "
                                      "this version does not define)", tag, kTagLastEvent + 1));
    }
    uint64_t records, instructions, check = 0;
    const uint8_t* p = get_varint(start + 1, &records);
    if (p) p = get_varint(p, &instructions);
    if (!p) fail(start, index_, "end marker counts are not varints");
    for (int i = 0; i < 8; ++i) check |= uint64_t{p[i]} << (8 * i);
    p += 8;
    if (p > in_->end()) fail(start, index_, "the data ends inside the end marker");
    if (records != index_ || instructions != instructions_) {
      fail(start, index_, fmt::format("end marker says {} records and {} instructions; the stream "
                                      "had {} and {} (corrupt trace)", records, instructions,
                                      index_, instructions_));
    }
    if (check != check_) {
      fail(start, index_, fmt::format("end marker check sum {:#018x}, records sum to {:#018x} "
                                      "(corrupt trace)", check, check_));
    }
    in_->set_pos(p);
    refill(index_);
    if (in_->pos() != in_->end()) {
      fail(in_->pos(), index_, "data after the end marker");
    }
    ended_ = true;
  }

  std::unique_ptr<InputBuffer> in_;
  Predictor pred_;
  std::vector<OsEvent> events_;  // the current batch's
  uint64_t index_ = 0;         // records decoded before the current read() call
  uint64_t instructions_ = 0;  // instructions they stand for
  uint64_t check_ = 0;         // their check sum
  bool ended_ = false;
};

class BinaryWriter final : public TraceWriter {
 public:
  BinaryWriter(std::unique_ptr<ByteSink> sink, std::string path)
      : out_(std::move(sink)), path_(std::move(path)) {
    const uint8_t header[kHeaderBytes] = {kMagic[0], kMagic[1], kMagic[2], kMagic[3], kVersion,
                                          0, 0, 0};
    out_.append(header, sizeof header);
  }

  using TraceWriter::write;
  void write(const TraceRecord* records, size_t n, const OsEvent* events,
             size_t n_events) override {
    if (closed_) throw Error(fmt::format("{}: write after close", path_));
    for (size_t i = 0; i < n; ++i) {
      const TraceRecord& r = records[i];
      const unsigned kind = static_cast<unsigned>(r.kind);
      if (kind > 2 || r.size == 0) {
        if (r.kind == RefKind::kEvent) {
          put_event(r.gap, event_to_write(path_, records_, r, events, n_events));
          continue;
        }
        throw Error(fmt::format("{}: record {}: kind {} size {}; expected kind 0..3 and size "
                                "1..255 (0 for an event)", path_, records_, kind, r.size));
      }
      uint8_t* p = out_.reserve(kMaxRecordBytes);
      const unsigned fetch = kind >> 1;
      uint8_t tag = static_cast<uint8_t>(kind << kTagKindShift);
      if (r.gap) tag |= kTagGap;
      if (r.size <= kTagSizeMask) tag |= r.size;
      *p++ = tag;
      if (r.size > kTagSizeMask) *p++ = r.size;
      if (r.gap) p = put_varint(p, r.gap);
      p = put_varint(p, zigzag(r.va - pred_.next[fetch]));
      pred_.next[fetch] = r.va + (fetch ? r.size : 0);
      out_.advance(p);
      ++records_;
      instructions_ += instructions_of(r);
      check_ += check_term(kind, r.size, r.gap, r.va);
    }
  }

  void close() override {
    if (closed_) return;
    uint8_t* p = out_.reserve(kMaxRecordBytes);
    *p++ = kTagEnd;
    p = put_varint(p, records_);
    p = put_varint(p, instructions_);
    for (int i = 0; i < 8; ++i) *p++ = static_cast<uint8_t>(check_ >> (8 * i));
    out_.advance(p);
    out_.finish();
    closed_ = true;
  }

  const std::string& path() const override { return path_; }
  uint64_t records() const override { return records_; }
  uint64_t events() const override { return events_; }

 private:
  void put_event(uint32_t gap, const OsEvent& e) {
    uint64_t fields[kMaxEventFields];
    const int count = event_fields(e, fields);
    const uint8_t tag = static_cast<uint8_t>(kTagFirstEvent + static_cast<uint8_t>(e.kind));
    uint8_t* p = out_.reserve(kMaxEventBytes);
    *p++ = tag;
    p = put_varint(p, gap);
    for (int i = 0; i < count; ++i) p = put_varint(p, fields[i]);
    out_.advance(p);
    ++records_;
    ++events_;
    instructions_ += gap;
    check_ += event_check_term(tag, gap, fields, count);
  }

  OutputBuffer out_;
  std::string path_;
  Predictor pred_;
  uint64_t records_ = 0;
  uint64_t events_ = 0;
  uint64_t instructions_ = 0;
  uint64_t check_ = 0;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<TraceReader> make_binary_reader(std::unique_ptr<InputBuffer> in) {
  return std::make_unique<BinaryReader>(std::move(in));
}

std::unique_ptr<TraceWriter> make_binary_writer(std::unique_ptr<ByteSink> sink, std::string path) {
  return std::make_unique<BinaryWriter>(std::move(sink), std::move(path));
}

}  // namespace shadowsim
