// The binary trace format, version 1 (docs/trace-format.md is the specification; this file is
// its constants and the varint/zigzag coding shared by the reader, the writer and tests).
#pragma once

#include <cstdint>

namespace shadowsim::sst {

constexpr uint8_t kMagic[4] = {0x89, 'S', 'S', 'T'};  // 0x89: a text-mode transfer breaks it
constexpr uint8_t kVersion = 1;
constexpr int kHeaderBytes = 8;  // magic, version, flags (0), 2 reserved bytes (0)

// Tag byte. Access record: 0 k k g s s s s (kind, gap-follows flag, size or 0 = size byte
// follows). 0x80 + OsEventKind: an OS-event record (0x80..0x89; the rest up to 0xfe stays
// reserved for further events); 0xff ends the stream.
constexpr uint8_t kTagKindShift = 5;
constexpr uint8_t kTagGap = 0x10;
constexpr uint8_t kTagSizeMask = 0x0f;
constexpr uint8_t kTagFirstEvent = 0x80;
constexpr uint8_t kTagLastEvent = 0x89;  // kTagFirstEvent + kOsEventKinds - 1
constexpr uint8_t kTagEnd = 0xff;

// Longest record: tag, size byte, 5-byte gap, 10-byte address delta; the end marker is at most
// 1 + 10 + 10 + 8. A decoder with this many bytes in hand needs no bounds check inside a record.
constexpr int kMaxRecordBytes = 29;
// Longest event record (mremap): tag, 5-byte gap, four 10-byte fields, 5-byte flags. Within the
// input window's zero padding, so an event cut short also decodes harmlessly before the check.
constexpr int kMaxEventBytes = 1 + 5 + 4 * 10 + 5;

// The end marker's check sum adds this over all records (mod 2^64). A sum, not a hash: one add
// per record on the decode path, and a damaged address delta shifts every later address anyway.
inline uint64_t check_term(uint64_t kind, uint64_t size, uint64_t gap, uint64_t va) {
  return va + (gap << 16) + (size << 8) + kind;
}

// An event record's term: as an access record with kind 3, size = its tag and va = the sum of its
// field values weighted 1, 3, 5, ... (odd weights: a damaged or swapped field changes the sum).
inline uint64_t event_check_term(uint64_t tag, uint64_t gap, const uint64_t* fields, int count) {
  uint64_t va = 0;
  for (int i = 0; i < count; ++i) va += fields[i] * (2 * i + 1);
  return check_term(3, tag, gap, va);
}

inline uint64_t zigzag(uint64_t delta) {  // delta taken as a two's complement int64
  return (delta << 1) ^ (0 - (delta >> 63));
}
inline uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

inline uint8_t* put_varint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

// LEB128 of at most 10 bytes whose value fits 64 bits; nullptr otherwise.
inline const uint8_t* get_varint(const uint8_t* p, uint64_t* v) {
  uint64_t b = *p++;
  if (b < 0x80) {
    *v = b;
    return p;
  }
  uint64_t r = b & 0x7f;
  for (int shift = 7; shift < 64; shift += 7) {
    b = *p++;
    r |= (b & 0x7f) << shift;
    if (b < 0x80) {
      if (shift == 63 && b > 1) return nullptr;
      *v = r;
      return p;
    }
  }
  return nullptr;
}

}  // namespace shadowsim::sst
