#include "prefect/json_fields.h"

namespace tracer {

kj::Maybe<capnp::JsonValue::Reader> member(capnp::JsonValue::Reader object, kj::StringPtr name) {
  if (!object.isObject()) return nullptr;
  for (auto field: object.getObject()) {
    if (field.getName() == name) return field.getValue();
  }
  return nullptr;
}

std::string text(capnp::JsonValue::Reader object, kj::StringPtr name) {
  KJ_IF_MAYBE(value, member(object, name)) {
    if (value->isString()) return value->getString().cStr();
  }
  return "";
}

}  // namespace tracer
