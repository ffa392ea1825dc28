#pragma once
// Reading Prefect's JSON answers (decoded into capnp::JsonValue) leniently:
// a missing or mistyped field reads as empty, so a newer Prefect adding or
// changing fields we do not rely on cannot break us.

#include <capnp/compat/json.h>
#include <kj/string.h>

#include <string>

namespace tracer {

kj::Maybe<capnp::JsonValue::Reader> member(capnp::JsonValue::Reader object, kj::StringPtr name);
std::string text(capnp::JsonValue::Reader object, kj::StringPtr name);  // "" if absent

}  // namespace tracer
