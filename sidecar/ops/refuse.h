#pragma once
// Bad input from a caller gets one clear sentence saying what was asked and why
// it is refused. It reaches the client as the RPC error's description, without
// KJ_REQUIRE's "expression = value" decoration.

#include <kj/exception.h>
#include <kj/string.h>

namespace tracer {

[[noreturn]] inline void refuse(kj::String sentence) {
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::mv(sentence)));
}

}  // namespace tracer
