// The assembled system end to end, on small hand-written text traces: walk counts with
// paging-structure-cache skipping, page-crossing accesses, warm-up and intervals, determinism
// (also across quanta for one VCPU), multi-stream workloads, and bad input met while replaying.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "stats_output.h"
#include "system.h"
#include "workloads/generators.h"
#include "system_test_util.h"

namespace shadowsim {
namespace {

TEST_F(SystemTest, ColdWalksThenPagingStructureCachesSkipLevels) {
  // Page A, its neighbour (same page table), then 2 MiB away (same page directory). Every first
  // touch walks to a not-present entry, faults (the guest kernel maps the zero page), and walks
  // again; delivering the #PF invalidates the PSC entries that address's walk would use, so
  // every retry walk is cold.
  write("t.sstx", "R 0x10000000 8\nR 0x10001000 8\nR 0x10200000 8\nR 0x10002000 8\n");
  const auto s = run(R"({"workload": {"trace": "t.sstx"}})");
  EXPECT_EQ(stat(*s, "vcpu0.page_faults"), 4);
  EXPECT_EQ(stat(*s, "guest.faults.zero_page"), 4);
  // Eight user walks, and one of the kernel's direct map (its first page-table access; a 1 GiB
  // global page, so every later kernel access hits the TLB).
  EXPECT_EQ(stat(*s, "pcpu0.walker.walks"), 9);
  // A: 1 (PML4E not present) + 4. Neighbour: PDE cached, 1 (PTE not present) + 4. 2 MiB away:
  // PDPTE cached, 1 (PDE not present) + 4. Fourth page, A's page table again: PDE cached, 1 + 4.
  // The direct map: PML4E, PDPTE (the 1 GiB leaf).
  EXPECT_EQ(stat(*s, "pcpu0.walker.references"), 20 + 2);
  EXPECT_EQ(stat(*s, "sim.references"), 4);
}

TEST_F(SystemTest, PageCrossingAccessesTranslateEveryPage) {
  write("t.sstx", "W 0x10000ffc 8\nR 0x10000ff0 16\n");
  const auto s = run(R"({"workload": {"trace": "t.sstx"}})");
  EXPECT_EQ(stat(*s, "vcpu0.page_crossings"), 1);
  EXPECT_EQ(stat(*s, "vcpu0.page_faults"), 2);
  EXPECT_EQ(stat(*s, "guest.faults.anonymous"), 2);
  EXPECT_EQ(stat(*s, "vcpu0.references.write"), 1);
}

// The guest scheduler: with fewer VCPUs than streams every stream still runs to its end (the
// same instructions and references as one VCPU per stream), tasks are time-sliced and
// switched, and PCIDs let a CPU switch back to an address space without flushing it.
double sum_over_vcpus(const System& s, int vcpus, const std::string& stat_name) {
  double total = 0;
  for (int i = 0; i < vcpus; ++i) {
    const StatsRegistry::Entry* e = s.stats().find(fmt::format("vcpu{}.{}", i, stat_name));
    if (e) total += static_cast<double>(*e->counter);
  }
  return total;
}

TEST_F(SystemTest, FewerVcpusThanStreamsTimeSliceEveryStreamToItsEnd) {
  GeneratorParams g;
  g.scale = 0.05;
  const std::string manifest =
      generate_workload("kernel-compile", g, 3, (dir_ / "kc").string());
  const std::string config = fmt::format(R"({{"workload": {{"trace": "{}"}}}})", manifest);
  const auto pinned = run(config);
  ASSERT_NE(pinned->stats().find("vcpu2.instructions"), nullptr);  // several streams
  const auto one = run(config, {"machine.vcpus=1", "guest.scheduler.slice_cycles=100000"});
  const auto two = run(config, {"machine.vcpus=2", "guest.scheduler.slice_cycles=100000"});
  const double instructions = sum_over_vcpus(*pinned, 1000, "instructions");
  EXPECT_EQ(stat(*one, "vcpu0.instructions"), instructions);
  EXPECT_EQ(sum_over_vcpus(*two, 2, "instructions"), instructions);
  EXPECT_EQ(stat(*one, "sim.references"), stat(*pinned, "sim.references"));
  EXPECT_EQ(stat(*pinned, "guest.scheduler.preemptions"), 0);
  EXPECT_EQ(sum_over_vcpus(*pinned, 1000, "context_switches"), 0);
  EXPECT_GT(stat(*one, "guest.scheduler.preemptions"), 0);
  EXPECT_GT(stat(*one, "vcpu0.context_switches"), stat(*one, "guest.scheduler.preemptions"));
  // One VCPU does the work of all: its makespan is longer than with two.
  EXPECT_GT(stat(*one, "sim.makespan_cycles"), stat(*two, "sim.makespan_cycles"));
  EXPECT_EQ(stat(*one, "vcpu0.idle_cycles"), 0);
}

TEST_F(SystemTest, PcidsKeepAddressSpacesAcrossContextSwitches) {
  // Threads of one mm migrate between two VCPUs and unmap regions while the other VCPU holds
  // the mm's entries under its PCID; fork-exit adds COW. The TLB audit stops the run if a
  // switch back keeps an entry the tables no longer allow.
  GeneratorParams g;
  g.scale = 0.05;
  for (const char* kind : {"threads", "fork-exit"}) {
    const std::string manifest = generate_workload(kind, g, 3, (dir_ / kind).string());
    const std::string config = fmt::format(R"({{"workload": {{"trace": "{}"}}}})", manifest);
    const std::vector<std::string> two_vcpus = {"machine.vcpus=2", "run.audit_tlb=true",
                                                "guest.scheduler.slice_cycles=5000"};
    std::vector<std::string> with_pcid = two_vcpus;
    with_pcid.push_back("machine.controls.cr4_pcide=true");
    const auto plain = run(config, two_vcpus);
    const auto pcid = run(config, with_pcid);
    const double switches = sum_over_vcpus(*plain, 2, "context_switches");
    ASSERT_GT(switches, 0) << kind;
    // Threads share one mm (switches need no CR3 load); processes keep theirs under PCIDs.
    const double pcid_flushes = sum_over_vcpus(*pcid, 2, "cr3_flushes");
    const double plain_flushes = sum_over_vcpus(*plain, 2, "cr3_flushes");
    if (std::string(kind) == "threads") {
      EXPECT_LE(pcid_flushes, plain_flushes);
    } else {
      EXPECT_LT(pcid_flushes, plain_flushes);
    }
  }
}

std::string random_trace(int records, uint64_t seed) {
  std::string text;
  uint64_t x = seed;
  for (int i = 0; i < records; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const char kind = "RRWF"[(x >> 60) & 3];
    const uint64_t va = (kind == 'F' ? 0x400000ULL : 0x7f0000000000ULL) + ((x >> 20) % 3000) * 4096 +
                        ((x >> 8) & 0xff8);
    text += fmt::format("{} {:#x} 8 +{}\n", kind, va, (x >> 4) & 3);
  }
  return text;
}

TEST_F(SystemTest, SameConfigAndSeedGiveIdenticalStatistics) {
  write("t.sstx", random_trace(20000, 7));
  const std::string config = R"({"workload": {"trace": "t.sstx"}, "guest": {"random_frames": true},
                                 "run": {"seed": 3, "warmup_references": 2000}})";
  const std::string a = stats_without_host(*run(config));
  const std::string b = stats_without_host(*run(config));
  EXPECT_EQ(a, b);
  const std::string other_seed = stats_without_host(*run(config, {"run.seed=4"}));
  EXPECT_NE(a, other_seed);  // random frame placement and replacement follow the seed
}

TEST_F(SystemTest, OneVcpuDoesNotDependOnTheQuantum) {
  write("t.sstx", random_trace(5000, 9));
  const auto small = run(R"({"workload": {"trace": "t.sstx"}, "run": {"quantum_cycles": 50}})");
  const auto large = run(R"({"workload": {"trace": "t.sstx"}, "run": {"quantum_cycles": 1000000}})");
  EXPECT_EQ(stat(*small, "vcpu0.cycles"), stat(*large, "vcpu0.cycles"));
  EXPECT_EQ(small->record().end_cycles, large->record().end_cycles);
}

TEST_F(SystemTest, WarmupResetsAndIntervalsSnapshot) {
  write("t.sstx", random_trace(1000, 1));
  const auto s = run(R"({"workload": {"trace": "t.sstx"},
                         "run": {"warmup_references": 300, "interval_references": 100}})");
  EXPECT_EQ(s->record().roi_references, 700u);
  EXPECT_EQ(stat(*s, "vcpu0.references.read") + stat(*s, "vcpu0.references.write") +
                stat(*s, "vcpu0.references.fetch"),
            700);
  ASSERT_EQ(s->record().intervals.size(), 7u);
  EXPECT_EQ(s->record().intervals[2].references, 300u);
  EXPECT_GT(s->record().roi_start_cycles, 0u);
  const auto limited = run(R"({"workload": {"trace": "t.sstx"}, "run": {"max_references": 250}})");
  EXPECT_EQ(limited->record().roi_references, 250u);
  const auto by_time = run(R"({"workload": {"trace": "t.sstx"},
                               "run": {"warmup_cycles": 2000, "quantum_cycles": 100}})");
  EXPECT_GE(by_time->record().roi_start_cycles, 2000u);
  EXPECT_LT(by_time->record().roi_start_cycles, 2000u + 100u + 2000u);  // + one first-touch fault
  EXPECT_LT(by_time->record().roi_references, 1000u);
  EXPECT_THROW(run(R"({"workload": {"trace": "t.sstx"},
                       "run": {"warmup_cycles": 2000, "warmup_references": 5}})"),
               Error);
}

TEST_F(SystemTest, ThreadsShareAnAddressSpaceProcessesDoNot) {
  const std::string trace = random_trace(2000, 5);
  write("a.sstx", trace);
  write("b.sstx", trace);
  auto manifest = [&](const char* origin) {
    return write("w.json", fmt::format(R"({{"version": 1, "paging_mode": "4level", "streams": [
      {{"id": 0, "file": "a.sstx", "created": "initial"}},
      {{"id": 1, "file": "b.sstx", "parent": 0, "created": "{}"}}]}})", origin));
  };
  manifest("fork");
  const auto processes = run(R"({"workload": {"trace": "w.json"}})");
  manifest("thread");
  const auto threads = run(R"({"workload": {"trace": "w.json"}})");
  EXPECT_EQ(stat(*processes, "guest.table_pages_allocated"),
            2 * stat(*threads, "guest.table_pages_allocated"));
  EXPECT_GT(stat(*threads, "vcpu1.references.read"), 0);
}

TEST_F(SystemTest, ThirtyTwoBitModesFoldTheTraceAndRefuseWhatCannotFit) {
  write("t.sstx", random_trace(3000, 2));
  for (const char* mode : {"32bit", "pae", "5level"}) {
    const auto s = run(R"({"workload": {"trace": "t.sstx"}})",
                       {std::string("machine.paging_mode=") + mode});
    EXPECT_EQ(stat(*s, "sim.references"), 3000) << mode;
  }
  // Guest memory above 4 GiB with random placement: 32-bit-reachable frames still come from
  // below 4 GiB (PAE's PDPT, every table and page in 32-bit paging).
  for (const char* mode : {"32bit", "pae"}) {
    const auto big = run(R"({"workload": {"trace": "t.sstx"}, "guest": {"random_frames": true},
                            "machine": {"memory": {"size_mib": 16384}}})",
                         {std::string("machine.paging_mode=") + mode});
    EXPECT_EQ(stat(*big, "sim.references"), 3000) << mode;
  }
  std::string wide;
  for (uint64_t r = 0; r < 13; ++r) wide += fmt::format("R {:#x} 8\n", r << 32);
  write("wide.sstx", wide);
  try {
    run(R"({"workload": {"trace": "wide.sstx"}})", {"machine.paging_mode=32bit"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0xb00000000"), std::string::npos) << e.what();
  }
}

TEST_F(SystemTest, AFailedSystemDoesNotBreakTheNextOneInTheSameProcess) {
  write("t.sstx", random_trace(100, 4));
  EXPECT_THROW(run(R"({"workload": {"trace": "missing.sstx"}})"), Error);
  EXPECT_THROW(run(R"({"workload": {"trace": "missing.sstx"}})"), Error);
  EXPECT_EQ(stat(*run(R"({"workload": {"trace": "t.sstx"}})"), "sim.references"), 100);
}

TEST_F(SystemTest, TheReferenceLimitIsExactWithSeveralVcpus) {
  const std::string trace = random_trace(3000, 8);
  for (const char* f : {"a.sstx", "b.sstx", "c.sstx", "d.sstx"}) write(f, trace);
  write("w.json", R"({"version": 1, "paging_mode": "4level", "streams": [
      {"id": 0, "file": "a.sstx"}, {"id": 1, "file": "b.sstx"},
      {"id": 2, "file": "c.sstx"}, {"id": 3, "file": "d.sstx"}]})");
  const auto s = run(R"({"workload": {"trace": "w.json"}, "run": {"max_references": 1000}})");
  // A VCPU stopped inside the guest kernel (synchronised, waiting) when another reaches the
  // limit still completes the reference it is in: at most one per other VCPU.
  EXPECT_GE(s->record().roi_references, 1000u);
  EXPECT_LE(s->record().roi_references, 1003u);
}

TEST_F(SystemTest, RecordedOsEventsDriveTheGuestKernel) {
  write("t.sstx", R"(# brk, mmap, mprotect, munmap, exec and exit, as a process records them
E brk 0x10000000
E brk 0x10004000
W 0x10000010 8
E mmap 0x7f0000000000 0x4000 rw- private,anonymous
W 0x7f0000001000 8
R 0x7f0000002000 8
E mprotect 0x7f0000000000 0x4000 r--
R 0x7f0000001000 8
E munmap 0x7f0000000000 0x4000
E exec
E mmap 0x400000 0x2000 r-x private
F 0x400000 4
E exit
R 0x10000010 8
)");
  for (const char* mode : {"4level", "pae"}) {
    // No implicit VMAs: every access must be allowed by a VMA the events created.
    const auto s = run(R"({"workload": {"trace": "t.sstx"}, "guest": {"implicit_vmas": false}})",
                       {std::string("machine.paging_mode=") + mode});
    EXPECT_EQ(stat(*s, "sim.references"), 5) << "the read after exit is not replayed";
    EXPECT_EQ(stat(*s, "vcpu0.os_events.mmap"), 2);
    EXPECT_EQ(stat(*s, "vcpu0.os_events.brk"), 2);
    EXPECT_EQ(stat(*s, "guest.faults.anonymous"), 2);
    EXPECT_EQ(stat(*s, "guest.faults.zero_page"), 1);
    EXPECT_EQ(stat(*s, "guest.faults.file_around"), 1);
    EXPECT_EQ(stat(*s, "guest.execs"), 1);
    EXPECT_EQ(stat(*s, "guest.exits"), 1);
    // Everything is freed but the exited process's top level, which stays while the VCPU has
    // it in CR3 (Linux frees a PGD at mmdrop, once no CPU uses it lazily): the PML4, or on PAE
    // the PDPT with its three user page directories (the kernel's is shared).
    const double still_loaded = std::string(mode) == "pae" ? 4 : 1;
    EXPECT_EQ(stat(*s, "guest.table_pages_allocated"),
              stat(*s, "guest.table_pages_freed") + still_loaded);
    EXPECT_GT(stat(*s, "guest.tlb.pages_flushed"), 0);  // mprotect and munmap flushed
    EXPECT_GT(stat(*s, "guest.tlb.local_flushes"), 0);
    EXPECT_EQ(stat(*s, "guest.tlb.shootdowns"), 0);  // one VCPU: nobody to interrupt
  }
}

TEST_F(SystemTest, ChildStreamsStartAtTheirParentsCreateEvent) {
  const std::string manifest = R"({"version": 1, "paging_mode": "4level", "streams": [
      {"id": 0, "file": "parent.sstx"},
      {"id": 1, "file": "child.sstx", "parent": 0, "created": "HOW"}]})";
  auto with = [&](const char* how) {
    std::string m = manifest;
    m.replace(m.find("HOW"), 3, how);
    write("w.json", m);
  };
  // fork after a write: the child's write to the same page breaks copy-on-write.
  write("parent.sstx", "W 0x10000000 8\nE create 1 fork\nR 0x10000000 8\n");
  write("child.sstx", "W 0x10000008 8\nE exit\n");
  with("fork");
  auto s = run(R"({"workload": {"trace": "w.json"}})");
  EXPECT_EQ(stat(*s, "guest.forks"), 1);
  EXPECT_EQ(stat(*s, "guest.faults.cow_copy"), 1);
  EXPECT_EQ(stat(*s, "vcpu1.page_faults"), 1);
  // vfork: the child runs in the parent's mm (the parent's page is there) until it execs.
  write("parent.sstx", "R 0x10000000 8\nE create 1 vfork\nR 0x10001000 8\n");
  write("child.sstx", "R 0x10000000 8\nE exec\nR 0x20000000 8\nE exit\n");
  with("vfork");
  s = run(R"({"workload": {"trace": "w.json"}})");
  EXPECT_EQ(stat(*s, "guest.vforks"), 1);
  EXPECT_EQ(stat(*s, "guest.execs"), 1);
  EXPECT_EQ(stat(*s, "vcpu1.page_faults"), 1) << "only the page touched after exec faults";
  EXPECT_EQ(stat(*s, "sim.references"), 4);
}

TEST_F(SystemTest, ThreadsSharingAnMmGetShootdownInterrupts) {
  // Two threads of one process: the first unmaps a range both have touched, so the second's TLB
  // must be flushed by IPI, and it pays the handler.
  std::string a = "E create 1 thread\nE mmap 0x7f0000000000 0x10000 rw- private,anonymous\n";
  std::string b;
  for (int i = 0; i < 16; ++i) {
    a += fmt::format("W {:#x} 8 +50\n", 0x7f0000000000ULL + i * 4096);
    b += fmt::format("R {:#x} 8 +50\n", 0x7f0000000000ULL + i * 4096);
  }
  for (int i = 0; i < 200; ++i) b += "R 0x7f0000000000 8 +100\n";  // still running later
  a += "E munmap 0x7f0000000000 0x10000 +200000\n";
  write("a.sstx", a);
  write("b.sstx", b);
  write("w.json", R"({"version": 1, "paging_mode": "4level", "streams": [
      {"id": 0, "file": "a.sstx"}, {"id": 1, "file": "b.sstx", "parent": 0, "created": "thread"}]})");
  const auto s = run(R"({"workload": {"trace": "w.json"}, "guest": {"implicit_vmas": true}})");
  EXPECT_GE(stat(*s, "guest.tlb.shootdowns"), 1);
  EXPECT_GE(stat(*s, "vcpu1.interrupts"), 1);
  EXPECT_GT(stat(*s, "vcpu1.interrupt_cycles"), 0);
}

TEST_F(SystemTest, AnEventsFlushCostLandsOnTheVcpuThatMadeIt) {
  std::string t = "E mmap 0x7f0000000000 0x8000 rw- private,anonymous\n";
  for (int i = 0; i < 8; ++i) t += fmt::format("W {:#x} 8\n", 0x7f0000000000ULL + i * 4096);
  t += "E munmap 0x7f0000000000 0x8000\n";  // eight pages: INVLPG each, no later fault
  write("t.sstx", t);
  const std::string config = R"({"workload": {"trace": "t.sstx"}})";
  const auto cheap = run(config, {"machine.tlb_shootdown.invlpg_cycles=200"});
  const auto dear = run(config, {"machine.tlb_shootdown.invlpg_cycles=1000200"});
  EXPECT_EQ(stat(*dear, "vcpu0.cycles") - stat(*cheap, "vcpu0.cycles"), 8 * 1000000.0);
  EXPECT_EQ(stat(*dear, "vcpu0.translation_cycles"), stat(*cheap, "vcpu0.translation_cycles"));
}

TEST_F(SystemTest, FlushesCoverTheHullOfTheChangedRange) {
  // Two pages 1 MiB apart: the hull is 257 pages, above the 33-page ceiling: a full flush.
  write("t.sstx", "E mmap 0x7f0000000000 0x200000 rw- private,anonymous\n"
                  "W 0x7f0000000000 8\nW 0x7f0000100000 8\n"
                  "E munmap 0x7f0000000000 0x200000\n");
  const auto s = run(R"({"workload": {"trace": "t.sstx"}, "guest": {"implicit_vmas": false}})");
  EXPECT_EQ(stat(*s, "guest.full_flush_requests"), 1);
  EXPECT_EQ(stat(*s, "guest.tlb.pages_flushed"), 0);
}

TEST_F(SystemTest, AForkedChildSeesTheParentsLayoutInThirtyTwoBitGuests) {
  // The parent touches two 256 MiB regions, the child first touches the second one.
  write("parent.sstx", "E mmap 0x7f0000000000 0x10000 rw- private,anonymous\n"
                       "E mmap 0x7f0010000000 0x10000 rw- private,anonymous\n"
                       "W 0x7f0000000000 8\nW 0x7f0010000000 8\nE create 1 fork\n");
  write("child.sstx", "R 0x7f0010005000 8\nW 0x7f0000000008 8\nE exit\n");
  write("w.json", R"({"version": 1, "paging_mode": "4level", "streams": [
      {"id": 0, "file": "parent.sstx"}, {"id": 1, "file": "child.sstx", "parent": 0,
       "created": "fork"}]})");
  for (const char* mode : {"pae", "32bit", "4level"}) {
    const auto s = run(R"({"workload": {"trace": "w.json"}, "guest": {"implicit_vmas": false}})",
                       {std::string("machine.paging_mode=") + mode});
    EXPECT_EQ(stat(*s, "guest.faults.cow_copy"), 1) << mode;
  }
}

TEST_F(SystemTest, BrkDoesNotGrowIntoAMappingAndForkedFramesSurviveTheParent) {
  write("parent.sstx", "E brk 0x0f000000\nE mmap 0x10000000 0x1000 rw- private,anonymous\n"
                       "W 0x10000000 8\nE brk 0x10010000\nE create 1 fork\nE exit\n");
  write("child.sstx", "W 0x10000000 8\nE exit\n");
  write("w.json", R"({"version": 1, "paging_mode": "4level", "streams": [
      {"id": 0, "file": "parent.sstx"}, {"id": 1, "file": "child.sstx", "parent": 0,
       "created": "fork"}]})");
  const auto s = run(R"({"workload": {"trace": "w.json"}, "guest": {"implicit_vmas": false}})");
  EXPECT_EQ(stat(*s, "guest.refused_brks"), 1);
  // Both processes' PML4s stay loaded on their VCPUs after their exits (freed at mmdrop).
  EXPECT_EQ(stat(*s, "guest.table_pages_allocated"), stat(*s, "guest.table_pages_freed") + 2);
}

TEST_F(SystemTest, AWaitBlocksTheParentUntilTheChildHasExited) {
  std::string child = "E mmap 0x7f0000000000 0x10000 rw- private,anonymous\n";
  for (int i = 0; i < 400; ++i) child += fmt::format("W {:#x} 8 +200\n", 0x7f0000000000ULL + (i % 16) * 4096);
  child += "E exit\n";
  write("parent.sstx", "R 0x10000 8\nE create 1 fork\nE wait 1\nR 0x10008 8\nE wait 7\n"
                       "R 0x10010 8\nE exit\n");
  write("child.sstx", child);
  write("w.json", R"({"version": 1, "paging_mode": "4level", "streams": [
      {"id": 0, "file": "parent.sstx"}, {"id": 1, "file": "child.sstx", "parent": 0,
       "created": "fork"}]})");
  const auto s = run(R"({"workload": {"trace": "w.json"}, "guest": {"implicit_vmas": true}})");
  EXPECT_EQ(stat(*s, "guest.waits"), 2) << "wait 1, and wait 7 (no such child: returns at once)";
  EXPECT_EQ(stat(*s, "vcpu0.os_events.wait"), 2);
  // The parent's VCPU sat idle while the child ran, and finished after it.
  EXPECT_GT(stat(*s, "vcpu0.idle_cycles"), 400 * 200);
  EXPECT_EQ(stat(*s, "sim.references"), 403);
}

TEST_F(SystemTest, CorruptTraceIsReportedWithFileAndLine) {
  write("t.sstx", "R 0x1000 8\nR 0x2000 8\nR zz 8\n");
  try {
    run(R"({"workload": {"trace": "t.sstx"}})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.sstx:3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace shadowsim
