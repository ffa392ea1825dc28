#pragma once
// The JSON form of the contract's structs (docs/architecture.md, "Contracts"):
// snake_case keys (cpu.user_ns), groups as nested objects, integers as JSON
// numbers, enums by name. capnp::JsonCodec would keep camelCase and quote
// 64-bit integers, which breaks the field-name contract users rely on.

#include <capnp/compat/json.h>
#include <capnp/dynamic.h>
#include <capnp/schema.h>
#include <kj/string.h>

namespace tracer {

kj::String camelToSnake(kj::StringPtr camel);

kj::String toContractJson(capnp::DynamicStruct::Reader value);

// Parses JSON text into `out` with Cap'n Proto's codec, which in 0.9 reads
// the hex letters of a \uXXXX escape wrong (\u001f as 0x15, \u00e9 as
// 0x95): every such escape is turned into the UTF-8 it stands for first
// (Python's json, Prefect's API among it, escapes all non-ASCII so). Every
// JSON text the sidecar and tracerctl read goes through here.
void decodeJson(kj::StringPtr json, capnp::JsonValue::Builder out);

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
// The same, of the list read out of its message (to look up many paths).
bool listsUnknown(kj::ArrayPtr<const kj::StringPtr> unknown, kj::StringPtr path);

// `text` as a JSON string literal, quotes included.
kj::String jsonQuoted(kj::StringPtr text);

// Fills `out` from a JSON object. Unknown keys, wrong types and malformed JSON
// throw (KJ_REQUIRE) with a message naming the key and the struct.
void fromContractJson(kj::StringPtr json, capnp::DynamicStruct::Builder out);

}  // namespace tracer
