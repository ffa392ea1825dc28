#pragma once
// What the status call and the Admin interface ask of the policy engine:
// reload the policies, say which apply and what they recommend. The serving
// side (rpc/) holds this, not the Advisor that implements it.

#include <string>
#include <vector>

#include "tracer.capnp.h"

namespace tracer {

class PolicyAdmin {
 public:
  virtual ~PolicyAdmin() noexcept(false) = default;

  // Reloads the policy directory. On errors the current set stays; returns the errors.
  virtual std::vector<std::string> reload() = 0;
  virtual void fillStatus(proto::SidecarStatus::Builder status) const = 0;
  // The recommendations of the flows that match `flowPattern` (a glob).
  virtual void recommendations(const std::string& flowPattern, capnp::Orphanage orphanage,
                               capnp::Orphan<capnp::List<proto::TaskRecommendation>>& out) = 0;
};

}  // namespace tracer
