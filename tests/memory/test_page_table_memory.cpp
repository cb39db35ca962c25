#include <gtest/gtest.h>

#include "memory/page_table_memory.h"

namespace shadowsim {
namespace {

PageTableMemoryParams small() {
  PageTableMemoryParams p;
  p.size_mib = 64;
  p.l1d = {1, 2, 4};     // 16 lines
  p.l2 = {4, 4, 12};     // 64 lines
  p.llc = {16, 4, 40};   // 256 lines
  p.dram_latency_cycles = 200;
  return p;
}

TEST(PageTableMemory, LatencyIsThatOfTheLevelThatHits) {
  PageTableMemory m(small(), 2);
  EXPECT_EQ(m.read(0, 0x1000), 200u);  // cold: DRAM
  EXPECT_EQ(m.read(0, 0x1008), 4u);    // same 64 B line: L1D
  EXPECT_EQ(m.read(1, 0x1000), 40u);   // other PCPU: shared LLC
  // Push line 0x1000 out of PCPU 0's 2-way L1D set (8 sets: lines 64 and 72 share its set).
  m.read(0, 0x1000 + 8 * 64 * 1);
  m.read(0, 0x1000 + 8 * 64 * 2);
  EXPECT_EQ(m.read(0, 0x1000), 12u);   // still in L2
}

TEST(PageTableMemory, AWriteInvalidatesOtherPcpusPrivateCopies) {
  PageTableMemory m(small(), 3);
  m.read(0, 0x2000);
  m.read(1, 0x2000);
  EXPECT_EQ(m.read(1, 0x2000), 4u);
  EXPECT_EQ(m.write(0, 0x2000), 4u);   // writer keeps its line
  EXPECT_EQ(m.read(1, 0x2000), 40u);   // invalidated in PCPU 1: from the LLC
  EXPECT_EQ(m.read(0, 0x2000), 4u);
}

TEST(PageTableMemory, StatisticsCountEveryLevel) {
  PageTableMemory m(small(), 1);
  StatsRegistry registry;
  m.register_stats(StatsGroup(registry, "ptmem"));
  m.read(0, 0);
  m.read(0, 0);
  m.write(0, 64);
  EXPECT_EQ(*registry.find("ptmem.reads")->counter, 2u);
  EXPECT_EQ(*registry.find("ptmem.writes")->counter, 1u);
  EXPECT_EQ(*registry.find("ptmem.pcpu0.l1d.hits")->counter, 1u);
  EXPECT_EQ(*registry.find("ptmem.dram_accesses")->counter, 2u);
  EXPECT_DOUBLE_EQ(registry.find("ptmem.pcpu0.l1d.hit_rate")->formula(), 1.0 / 3.0);
  registry.reset();
  EXPECT_EQ(*registry.find("ptmem.reads")->counter, 0u);
}

TEST(PageTableMemory, OwnsGuestMemoryOfTheConfiguredSize) {
  PageTableMemory m(small(), 1);
  EXPECT_EQ(m.memory().size_bytes(), 64ULL << 20);
  EXPECT_THROW(PageTableMemory(small(), 0), Error);
}

}  // namespace
}  // namespace shadowsim
