#include "observe/kernel_symbols.h"

#include <fstream>
#include <sstream>
#include <string>

namespace tracer {

kj::Maybe<uint64_t> kernelSymbolAddress(kj::StringPtr name, kj::StringPtr kallsyms) {
  std::ifstream in(kallsyms.cStr());
  std::string line;
  // Lines are "ADDRESS TYPE NAME [MODULE]".
  while (std::getline(in, line)) {
    auto space = line.rfind(' ');
    if (space == std::string::npos || line.compare(space + 1, std::string::npos, name.cStr()) != 0) {
      continue;
    }
    uint64_t address = std::stoull(line.substr(0, line.find(' ')), nullptr, 16);
    if (address == 0) return nullptr;
    return address;
  }
  return nullptr;
}

}  // namespace tracer
