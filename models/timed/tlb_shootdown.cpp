#include "timed/tlb_shootdown.h"

#include "timed/vcpu.h"

namespace shadowsim {

bool TlbShootdown::runs(Vcpu& vcpu, uint32_t mm) const {
  if (&vcpu != initiator_ && !vcpu.running()) return false;  // idle or waiting: no IPI
  return kernel_->alive(vcpu.pid()) && kernel_->mm_of(vcpu.pid()) == mm;
}

template <typename Flush>
void TlbShootdown::shootdown(uint32_t mm, uint64_t local_cycles, Flush&& flush) {
  int remotes = 0;
  for (auto& vcpu : *vcpus_) {
    if (!runs(*vcpu, mm)) continue;
    flush(*vcpu);
    if (vcpu.get() == initiator_) {
      ++local_flushes_;
      initiator_cycles_ += local_cycles;
    } else {
      ++remotes;
      ++remote_flushes_;
      vcpu->interrupt(params_.remote_handler_cycles + local_cycles);
    }
  }
  if (remotes) {
    ++shootdowns_;
    initiator_cycles_ += params_.ipi_cycles;
  }
}

void TlbShootdown::flush_pages(uint32_t mm, const std::vector<uint64_t>& pages) {
  ++generations_[mm];
  pages_flushed_ += pages.size();
  shootdown(mm, pages.size() * params_.invlpg_cycles, [&](Vcpu& vcpu) {
    for (uint64_t page : pages) vcpu.mmu().invlpg(page, vcpu.tlb_context());
  });
}

void TlbShootdown::flush_mm(uint32_t mm) {
  ++generations_[mm];
  ++full_flushes_;
  shootdown(mm, params_.flush_cycles,
            [&](Vcpu& vcpu) { vcpu.mmu().flush_non_global(vcpu.tlb_context()); });
}

void TlbShootdown::register_stats(StatsGroup g) {
  g.counter("local_flushes", &local_flushes_, "flushes",
            "flushes of the initiating VCPU's own TLB");
  g.counter("shootdowns", &shootdowns_, "flushes", "flushes that needed IPIs to other VCPUs");
  g.counter("remote_flushes", &remote_flushes_, "interrupts",
            "VCPUs interrupted to flush their TLB");
  g.counter("pages_flushed", &pages_flushed_, "pages", "pages in page-list flushes");
  g.counter("full_flushes", &full_flushes_, "flushes", "full (non-global) flush requests");
}

}  // namespace shadowsim
