#pragma once
// What the running kernel's tracepoints pass, read from its own BTF
// (/sys/kernel/btf/vmlinux): the BPF collector loads the program variant
// each kernel can verify, instead of finding out from a failed load.

#include <bpf/btf.h>
#include <kj/common.h>
#include <stdint.h>
#include <kj/memory.h>
#include <kj/string.h>

namespace tracer {

class KernelBtf {
 public:
  // The kernel's BTF, or nothing and (in whyNot) why it cannot be read.
  static kj::Maybe<kj::Own<KernelBtf>> load(kj::String& whyNot);

  explicit KernelBtf(btf* types): types(types) {}
  ~KernelBtf() { btf__free(types); }
  KJ_DISALLOW_COPY(KernelBtf);

  // How many arguments the tracepoint passes to a tp_btf program (its
  // btf_trace_<name> prototype less the context pointer); nothing if the
  // kernel has no such tracepoint.
  kj::Maybe<uint32_t> tracepointArguments(kj::StringPtr tracepoint) const;

 private:
  btf* types;
};

}  // namespace tracer
