#include "timed/tlb_shootdown.h"

#include "timed/vcpu.h"

namespace shadowsim {

void TlbShootdown::enter(Vcpu* initiator) { initiator_ = initiator; }

uint64_t TlbShootdown::take_initiator_cycles(const Vcpu& vcpu) {
  const auto it = initiator_cycles_.find(&vcpu);
  if (it == initiator_cycles_.end()) return 0;
  const uint64_t c = it->second;
  it->second = 0;
  return c;
}

bool TlbShootdown::runs(const Vcpu& vcpu, const Vcpu* initiator, uint32_t mm) const {
  if (&vcpu != initiator && !vcpu.running()) return false;  // idle or waiting: no IPI
  return kernel_->alive(vcpu.pid()) && kernel_->mm_of(vcpu.pid()) == mm;
}

// `flush(vcpu, local)` flushes one VCPU and returns the extra cycles a remote one is charged
// (its exits under a hypervisor). The local flush may wait (a shadowed CR3 write takes the
// shadow lock), and other VCPUs may enter the kernel meanwhile: the initiator is kept here.
template <typename Flush>
void TlbShootdown::shootdown(uint32_t mm, uint64_t local_cycles, Flush&& flush) {
  Vcpu* const initiator = initiator_;
  int remotes = 0;
  size_t descheduled = 0;  // remote VCPUs that acknowledge only when they run again
  for (auto& vcpu : *vcpus_) {
    if (!runs(*vcpu, initiator, mm)) continue;
    // Under shadow paging the INVLPG / CR3 reload exits: its cost is the exit's, not the
    // native instruction's.
    const uint64_t instruction = vcpu->tlb_ops_exit() ? 0 : local_cycles;
    if (vcpu.get() == initiator) {
      flush(*vcpu, true);
      initiator_ = initiator;
      ++local_flushes_;
      initiator_cycles_[initiator] += instruction;
    } else {
      const uint64_t exits = flush(*vcpu, false);
      ++remotes;
      ++remote_flushes_;
      vcpu->interrupt(params_.remote_handler_cycles + instruction);
      const uint64_t hypervisor = exits + vcpu->ipi_exit();  // taking the IPI may exit too
      if (hypervisor) vcpu->hv_interrupt(hypervisor);
      if (!vcpu->on_pcpu() && initiator) {
        vcpu->request_ack(initiator);
        ++descheduled;
      }
    }
  }
  if (descheduled) {
    initiator->wait_for_acks(descheduled);
    initiator_ = initiator;
  }
  if (remotes) {
    ++shootdowns_;
    initiator_cycles_[initiator] += params_.ipi_cycles;
    if (initiator) {  // writing the ICR may exit
      if (const uint64_t exit = initiator->ipi_exit()) initiator->hv_interrupt(exit);
    }
  }
}

void TlbShootdown::flush_pages(uint32_t mm, const std::vector<uint64_t>& pages) {
  ++generations_[mm];
  pages_flushed_ += pages.size();
  shootdown(mm, pages.size() * params_.invlpg_cycles, [&](Vcpu& vcpu, bool local) {
    uint64_t extra = 0;
    for (uint64_t page : pages) {
      if (local) {
        vcpu.guest_invlpg(page);
      } else {
        extra += vcpu.remote_invlpg(page);
      }
    }
    return extra;
  });
}

void TlbShootdown::flush_mm(uint32_t mm) {
  ++generations_[mm];
  ++full_flushes_;
  shootdown(mm, params_.flush_cycles, [&](Vcpu& vcpu, bool local) -> uint64_t {
    if (!local) return vcpu.remote_flush_tlb();
    vcpu.guest_flush_tlb();
    return 0;
  });
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
