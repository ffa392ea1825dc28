#include "contract_json.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/vector.h>

#include <charconv>
#include <cmath>

namespace tracer {

namespace {

// Runs of lowercase go out whole: a row has some fifty names.
void appendSnake(kj::Vector<char>& out, kj::StringPtr camel) {
  const char* run = camel.begin();
  for (const char* at = camel.begin(); at != camel.end(); ++at) {
    if (*at < 'A' || *at > 'Z') continue;
    out.addAll(run, at);
    out.add('_');
    out.add(*at - 'A' + 'a');
    run = at + 1;
  }
  out.addAll(run, camel.end());
}

// Whether `snake` is camelToSnake(camel), without building it: reading a
// JSON object compares each key with every field's name, and allocating each
// name made a history row of ~50 keys cost ~100 us to read.
bool isSnakeOf(kj::StringPtr snake, kj::StringPtr camel) {
  size_t at = 0;
  for (char c: camel) {
    if (c >= 'A' && c <= 'Z') {
      if (at + 1 >= snake.size() || snake[at] != '_' || snake[at + 1] != c - 'A' + 'a') {
        return false;
      }
      at += 2;
    } else {
      if (at >= snake.size() || snake[at] != c) return false;
      ++at;
    }
  }
  return at == snake.size();
}

}  // namespace

kj::String camelToSnake(kj::StringPtr camel) {
  kj::Vector<char> out(camel.size() + 8);
  appendSnake(out, camel);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

namespace {

// What needs no escape goes out in runs, not a character at a time: an
// artifact's markdown is quoted whole.
void appendQuoted(kj::Vector<char>& out, kj::StringPtr text) {
  out.add('"');
  const char* run = text.begin();
  for (const char* at = text.begin(); at != text.end(); ++at) {
    unsigned char c = *at;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.addAll(run, at);
    run = at + 1;
    switch (c) {
      case '"': out.addAll(kj::StringPtr("\\\"")); break;
      case '\\': out.addAll(kj::StringPtr("\\\\")); break;
      case '\n': out.addAll(kj::StringPtr("\\n")); break;
      case '\r': out.addAll(kj::StringPtr("\\r")); break;
      case '\t': out.addAll(kj::StringPtr("\\t")); break;
      default: {
        static const char hex[] = "0123456789abcdef";
        out.addAll(kj::StringPtr("\\u00"));
        out.add(hex[c >> 4]);
        out.add(hex[c & 0xf]);
      }
    }
  }
  out.addAll(run, text.end());
  out.add('"');
}

// Dotted field paths a struct declares unknown through its `unknown` list
// (TaskReport): those are written as null rather than as a misleading zero.
using UnknownPaths = kj::ArrayPtr<const capnp::Text::Reader>;

template <typename Paths>
bool isUnknown(Paths unknown, kj::ArrayPtr<const char> path) {
  for (auto entry: unknown) {
    if (entry.asArray() == path) return true;
  }
  return false;
}

void appendValue(kj::Vector<char>& out, capnp::DynamicValue::Reader value);

// `path`: the dotted path of `value` from the root ("" there), grown by each
// field's name and cut back after it, where a path is needed at all (something
// is unknown, or the field is a group): no allocation per field.
void appendFields(kj::Vector<char>& out, capnp::DynamicStruct::Reader value,
                  kj::Vector<char>& path, UnknownPaths unknown) {
  out.add('{');
  bool first = true;
  auto emit = [&](capnp::StructSchema::Field field) {
    if (!first) out.add(',');
    first = false;
    auto proto = field.getProto();
    bool group = proto.isGroup();
    // Contract names are plain identifiers: snake_case needs no escaping.
    size_t nameAt = out.size() + 1;
    out.add('"');
    appendSnake(out, proto.getName());
    size_t pathAt = path.size();
    if (unknown.size() > 0 || group) {
      if (pathAt > 0) path.add('.');
      path.addAll(out.begin() + nameAt, out.end());
    }
    out.add('"');
    out.add(':');
    if (unknown.size() > 0 && isUnknown(unknown, path.asPtr())) {
      out.addAll(kj::StringPtr("null"));
    } else if (group) {
      appendFields(out, value.get(field).as<capnp::DynamicStruct>(), path, unknown);
    } else {
      appendValue(out, value.get(field));
    }
    path.resize(pathAt);
  };
  for (auto field: value.getSchema().getNonUnionFields()) emit(field);
  KJ_IF_MAYBE(active, value.which()) { emit(*active); }
  out.add('}');
}

// The shortest text that reads back as the same number (std::to_chars; for
// a double, as %g writes it: 0.0003, 1e-07), with no allocation: a table
// artifact of thousands of rows has tens of thousands of numbers.
void appendNumber(kj::Vector<char>& out, double value) {
  char text[32];
  auto written = std::to_chars(text, text + sizeof(text), value, std::chars_format::general);
  KJ_ASSERT(written.ec == std::errc(), "a number did not fit its buffer");
  out.addAll(text, written.ptr);
}

template <typename Integer>
void appendNumber(kj::Vector<char>& out, Integer value) {
  char text[24];
  auto written = std::to_chars(text, text + sizeof(text), value);
  KJ_ASSERT(written.ec == std::errc(), "a number did not fit its buffer");
  out.addAll(text, written.ptr);
}

void appendStruct(kj::Vector<char>& out, capnp::DynamicStruct::Reader value) {
  kj::Vector<capnp::Text::Reader> unknown;
  KJ_IF_MAYBE(field, value.getSchema().findFieldByName("unknown")) {
    auto type = field->getType();
    if (type.isList() && type.asList().getElementType().isText()) {
      for (auto path: value.get(*field).as<capnp::DynamicList>()) {
        unknown.add(path.as<capnp::Text>());
      }
    }
  }
  kj::Vector<char> path;
  appendFields(out, value, path, unknown);
}

void appendValue(kj::Vector<char>& out, capnp::DynamicValue::Reader value) {
  switch (value.getType()) {
    case capnp::DynamicValue::VOID: out.addAll(kj::StringPtr("null")); break;
    case capnp::DynamicValue::BOOL:
      out.addAll(kj::StringPtr(value.as<bool>() ? "true" : "false"));
      break;
    case capnp::DynamicValue::INT: appendNumber(out, value.as<int64_t>()); break;
    case capnp::DynamicValue::UINT: appendNumber(out, value.as<uint64_t>()); break;
    case capnp::DynamicValue::FLOAT: {
      double d = value.as<double>();
      if (std::isfinite(d)) {
        appendNumber(out, d);
      } else {
        out.addAll(kj::StringPtr("null"));
      }
      break;
    }
    case capnp::DynamicValue::TEXT: appendQuoted(out, value.as<capnp::Text>()); break;
    case capnp::DynamicValue::LIST: {
      out.add('[');
      bool first = true;
      for (auto element: value.as<capnp::DynamicList>()) {
        if (!first) out.add(',');
        first = false;
        appendValue(out, element);
      }
      out.add(']');
      break;
    }
    case capnp::DynamicValue::ENUM: {
      auto e = value.as<capnp::DynamicEnum>();
      KJ_IF_MAYBE(enumerant, e.getEnumerant()) {
        appendQuoted(out, camelToSnake(enumerant->getProto().getName()));
      } else {
        out.addAll(kj::str(e.getRaw()));
      }
      break;
    }
    case capnp::DynamicValue::STRUCT: appendStruct(out, value.as<capnp::DynamicStruct>()); break;
    default: KJ_FAIL_REQUIRE("type has no contract JSON form", value.getType());
  }
}

void fillStruct(capnp::JsonValue::Reader json, capnp::DynamicStruct::Builder out);

void setField(capnp::DynamicStruct::Builder out, capnp::StructSchema::Field field,
              capnp::JsonValue::Reader json, kj::StringPtr key) {
  auto type = field.getType();
  auto structName = out.getSchema().getShortDisplayName();
  auto number = [&]() {
    KJ_REQUIRE(json.isNumber(), "expected a number", structName, key);
    return json.getNumber();
  };
  switch (type.which()) {
    case capnp::schema::Type::BOOL:
      KJ_REQUIRE(json.isBoolean(), "expected true or false", structName, key);
      out.set(field, json.getBoolean());
      break;
    case capnp::schema::Type::INT8: case capnp::schema::Type::INT16:
    case capnp::schema::Type::INT32: case capnp::schema::Type::INT64: {
      double n = number();
      KJ_REQUIRE(n == std::floor(n), "expected an integer", structName, key);
      out.set(field, static_cast<int64_t>(n));  // DynamicValue range-checks the field width
      break;
    }
    case capnp::schema::Type::UINT8: case capnp::schema::Type::UINT16:
    case capnp::schema::Type::UINT32: case capnp::schema::Type::UINT64: {
      double n = number();
      KJ_REQUIRE(n >= 0 && n == std::floor(n), "expected a non-negative integer", structName, key);
      out.set(field, static_cast<uint64_t>(n));
      break;
    }
    case capnp::schema::Type::FLOAT32: case capnp::schema::Type::FLOAT64:
      out.set(field, number());
      break;
    case capnp::schema::Type::TEXT:
      KJ_REQUIRE(json.isString(), "expected a string", structName, key);
      out.set(field, json.getString());
      break;
    case capnp::schema::Type::LIST: {
      KJ_REQUIRE(json.isArray(), "expected a list", structName, key);
      auto items = json.getArray();
      auto elementType = type.asList().getElementType();
      auto list = out.init(field, items.size()).as<capnp::DynamicList>();
      for (auto i: kj::indices(items)) {
        if (elementType.isStruct()) {
          fillStruct(items[i], list[i].as<capnp::DynamicStruct>());
        } else {
          KJ_REQUIRE(elementType.isText(), "only lists of strings or objects are accepted",
                     structName, key);
          KJ_REQUIRE(items[i].isString(), "expected a list of strings", structName, key);
          list.set(i, items[i].getString());
        }
      }
      break;
    }
    case capnp::schema::Type::ENUM: {
      KJ_REQUIRE(json.isString(), "expected a name", structName, key);
      bool found = false;
      for (auto enumerant: type.asEnum().getEnumerants()) {
        if (isSnakeOf(json.getString(), enumerant.getProto().getName())) {
          out.set(field, capnp::DynamicEnum(enumerant));
          found = true;
        }
      }
      KJ_REQUIRE(found, "unknown value", structName, key, json.getString());
      break;
    }
    case capnp::schema::Type::STRUCT:
      fillStruct(json, out.init(field).as<capnp::DynamicStruct>());
      break;
    default:
      KJ_FAIL_REQUIRE("field cannot be set from JSON", structName, key);
  }
}

void fillStruct(capnp::JsonValue::Reader json, capnp::DynamicStruct::Builder out) {
  auto structName = out.getSchema().getShortDisplayName();
  KJ_REQUIRE(json.isObject(), "expected a JSON object", structName);
  auto fields = out.getSchema().getFields();
  // Looked for from the field after the last one found: what this file
  // writes comes in field order, so a key is most often the next field.
  uint next = 0;
  for (auto member: json.getObject()) {
    auto key = member.getName();
    kj::Maybe<capnp::StructSchema::Field> match;
    for (uint n = 0; n < fields.size(); ++n) {
      auto field = fields[(next + n) % fields.size()];
      if (isSnakeOf(key, field.getProto().getName())) {
        match = field;
        next = field.getIndex() + 1;
        break;
      }
    }
    KJ_IF_MAYBE(field, match) {
      if (member.getValue().isNull()) {
        continue;  // unknown (see TaskReport.unknown): the field keeps its default
      } else if (field->getProto().isGroup()) {
        fillStruct(member.getValue(), out.get(*field).as<capnp::DynamicStruct>());
      } else {
        setField(out, *field, member.getValue(), key);
      }
    } else {
      KJ_FAIL_REQUIRE("unknown key", structName, key);
    }
  }
}

}  // namespace

kj::String jsonQuoted(kj::StringPtr text) {
  kj::Vector<char> out(text.size() + 8);
  appendQuoted(out, text);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::String toContractJson(capnp::DynamicStruct::Reader value) {
  kj::Vector<char> out(256);
  appendStruct(out, value);
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of the \uXXXX at `at` (its backslash), or -1.
long escapedUnit(kj::StringPtr json, size_t at) {
  if (at + 6 > json.size() || json[at] != '\\' || json[at + 1] != 'u') return -1;
  long unit = 0;
  for (size_t i = at + 2; i < at + 6; ++i) {
    int digit = hexValue(json[i]);
    if (digit < 0) return -1;
    unit = unit * 16 + digit;
  }
  return unit;
}

void appendUtf8(kj::Vector<char>& out, uint32_t code) {
  if (code < 0x80) {
    out.add(char(code));
  } else if (code < 0x800) {
    out.add(char(0xc0 | (code >> 6)));
    out.add(char(0x80 | (code & 0x3f)));
  } else if (code < 0x10000) {
    out.add(char(0xe0 | (code >> 12)));
    out.add(char(0x80 | ((code >> 6) & 0x3f)));
    out.add(char(0x80 | (code & 0x3f)));
  } else {
    out.add(char(0xf0 | (code >> 18)));
    out.add(char(0x80 | ((code >> 12) & 0x3f)));
    out.add(char(0x80 | ((code >> 6) & 0x3f)));
    out.add(char(0x80 | (code & 0x3f)));
  }
}

// `json` with every \uXXXX escape (a surrogate pair as one) replaced by its
// UTF-8, but for a quote and a backslash, which stay escaped; the codec takes
// raw bytes inside strings.
kj::String unicodeEscapesDecoded(kj::StringPtr json) {
  kj::Vector<char> out(json.size() + 1);
  for (size_t i = 0; i < json.size(); ++i) {
    if (json[i] != '\\' || i + 1 >= json.size()) {
      out.add(json[i]);
      continue;
    }
    long unit = escapedUnit(json, i);
    if (unit < 0) {  // another escape: kept, with the character it escapes
      out.add(json[i]);
      out.add(json[++i]);
      continue;
    }
    uint32_t code = uint32_t(unit);
    size_t length = 6;
    long low = escapedUnit(json, i + 6);
    if (unit >= 0xd800 && unit < 0xdc00 && low >= 0xdc00 && low < 0xe000) {
      code = 0x10000 + ((uint32_t(unit) - 0xd800) << 10) + (uint32_t(low) - 0xdc00);
      length = 12;
    }
    if (code == '"' || code == '\\') out.add('\\');
    appendUtf8(out, code);
    i += length - 1;
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

}  // namespace

void decodeJson(kj::StringPtr json, capnp::JsonValue::Builder out) {
  capnp::JsonCodec().decodeRaw(unicodeEscapesDecoded(json), out);
}

void fromContractJson(kj::StringPtr json, capnp::DynamicStruct::Builder out) {
  capnp::MallocMessageBuilder scratch;
  auto root = scratch.initRoot<capnp::JsonValue>();
  decodeJson(json, root);
  fillStruct(root, out);
}

bool listsUnknown(capnp::List<capnp::Text>::Reader unknown, kj::StringPtr path) {
  return isUnknown(unknown, path.asArray());
}

bool listsUnknown(kj::ArrayPtr<const kj::StringPtr> unknown, kj::StringPtr path) {
  return isUnknown(unknown, path.asArray());
}

}  // namespace tracer
