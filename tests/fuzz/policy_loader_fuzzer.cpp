// libFuzzer target: arbitrary bytes as a policy file. The loader must never
// crash, hang or leak, and every error it reports must point inside the text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/policy_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto result = tracer::policy::loadPolicyText("fuzz.yaml", text);
  size_t lines = 1;
  for (char c: text) lines += c == '\n';
  for (auto& error: result.errors) {
    if (error.line < 0 || static_cast<size_t>(error.line) > lines + 1 || error.column < 0 ||
        error.message.empty()) {
      __builtin_trap();
    }
  }
  if (result.ok() && result.set.policies.empty()) __builtin_trap();  // ok means a usable set
  return 0;
}
