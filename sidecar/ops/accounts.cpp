#include "ops/accounts.h"

#include <grp.h>
#include <kj/common.h>
#include <pwd.h>

#include <cstdlib>

namespace tracer {

namespace {

kj::Maybe<unsigned long> number(kj::StringPtr text) {
  char* end;
  unsigned long value = strtoul(text.cStr(), &end, 10);
  if (text.size() == 0 || *end != '\0') return nullptr;
  return value;
}

}  // namespace

kj::Maybe<uid_t> lookupUser(kj::StringPtr name) {
  KJ_IF_MAYBE(uid, number(name)) { return static_cast<uid_t>(*uid); }
  struct passwd* entry = getpwnam(name.cStr());
  if (entry == nullptr) return nullptr;
  return entry->pw_uid;
}

kj::Maybe<gid_t> lookupGroup(kj::StringPtr name) {
  KJ_IF_MAYBE(gid, number(name)) { return static_cast<gid_t>(*gid); }
  struct group* entry = getgrnam(name.cStr());
  if (entry == nullptr) return nullptr;
  return entry->gr_gid;
}

}  // namespace tracer
