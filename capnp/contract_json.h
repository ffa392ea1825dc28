#pragma once
// The JSON form of the contract's structs (docs/architecture.md, "Contracts"):
// snake_case keys (cpu.user_ns), groups as nested objects, integers as JSON
// numbers, enums by name. capnp::JsonCodec would keep camelCase and quote
// 64-bit integers, which breaks the field-name contract users rely on.

#include <capnp/dynamic.h>
#include <capnp/schema.h>
#include <kj/string.h>

namespace tracer {

kj::String camelToSnake(kj::StringPtr camel);

kj::String toContractJson(capnp::DynamicStruct::Reader value);

// An enum value's schema name ("completed"), or nullptr for a value this
// build's schema does not have (a newer or hostile peer may send any number).
template <typename Enum>
kj::Maybe<kj::StringPtr> enumName(Enum value) {
  auto enumerants = capnp::Schema::from<Enum>().getEnumerants();
  auto index = static_cast<unsigned>(value);
  if (index >= enumerants.size()) return nullptr;
  return enumerants[index].getProto().getName();
}

// Whether a struct's `unknown` list (TaskReport.unknown) names this dotted
// field path ("net.tx_bytes"): such a field is not a number to show or add up.
bool listsUnknown(capnp::List<capnp::Text>::Reader unknown, kj::StringPtr path);

// `text` as a JSON string literal, quotes included.
kj::String jsonQuoted(kj::StringPtr text);

// Fills `out` from a JSON object. Unknown keys, wrong types and malformed JSON
// throw (KJ_REQUIRE) with a message naming the key and the struct.
void fromContractJson(kj::StringPtr json, capnp::DynamicStruct::Builder out);

}  // namespace tracer
