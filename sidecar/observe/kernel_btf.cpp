#include "observe/kernel_btf.h"

#include <cerrno>
#include <cstring>

namespace tracer {

kj::Maybe<kj::Own<KernelBtf>> KernelBtf::load(kj::String& whyNot) {
  btf* types = btf__load_vmlinux_btf();
  if (types == nullptr) {
    whyNot = kj::str("the kernel's BTF cannot be read (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): ",
                     strerror(errno));
    return nullptr;
  }
  return kj::heap<KernelBtf>(types);
}

kj::Maybe<uint32_t> KernelBtf::tracepointArguments(kj::StringPtr tracepoint) const {
  auto name = kj::str("btf_trace_", tracepoint);
  int id = btf__find_by_name_kind(types, name.cStr(), BTF_KIND_TYPEDEF);
  if (id < 0) return nullptr;
  // typedef void (*btf_trace_X)(void *__data, args...);
  const btf_type* pointer = btf__type_by_id(types, btf__type_by_id(types, id)->type);
  if (pointer == nullptr || !btf_is_ptr(pointer)) return nullptr;
  const btf_type* prototype = btf__type_by_id(types, pointer->type);
  if (prototype == nullptr || !btf_is_func_proto(prototype) || btf_vlen(prototype) == 0) return nullptr;
  return btf_vlen(prototype) - 1u;
}

}  // namespace tracer
