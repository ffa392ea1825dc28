#pragma once
// The JSON form of the contract's structs, as DESIGN.md names the fields:
// snake_case keys (cpu.user_ns), groups as nested objects, integers as JSON
// numbers, enums by name. capnp::JsonCodec would keep camelCase and quote
// 64-bit integers, which breaks the field-name contract users rely on.

#include <capnp/dynamic.h>
#include <kj/string.h>

namespace tracer {

kj::String camelToSnake(kj::StringPtr camel);

kj::String toContractJson(capnp::DynamicStruct::Reader value);

// `text` as a JSON string literal, quotes included.
kj::String jsonQuoted(kj::StringPtr text);

// Fills `out` from a JSON object. Unknown keys, wrong types and malformed JSON
// throw (KJ_REQUIRE) with a message naming the key and the struct.
void fromContractJson(kj::StringPtr json, capnp::DynamicStruct::Builder out);

}  // namespace tracer
