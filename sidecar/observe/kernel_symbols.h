#pragma once
// Where the running kernel put a function, from /proc/kallsyms: a BPF program
// that must recognise a kernel callback (a timer's function) compares with it.

#include <kj/common.h>
#include <kj/string.h>
#include <stdint.h>

namespace tracer {

// The address of the kernel symbol `name`; nothing if it is not there or
// the addresses are hidden (kptr_restrict shows them as 0).
kj::Maybe<uint64_t> kernelSymbolAddress(kj::StringPtr name,
                                        kj::StringPtr kallsyms = "/proc/kallsyms");

}  // namespace tracer
