#pragma once
// What the Admin interface asks of the artifacts on their way to Prefect: list
// them, and send the parked ones again. The serving side (rpc/) holds this,
// not the outbox and delivery behind it.

#include <vector>

#include "store/outbox.h"

namespace tracer {

class ArtifactAdmin {
 public:
  virtual ~ArtifactAdmin() noexcept(false) = default;

  // Newest first.
  virtual std::vector<OutboxEntry> list(size_t limit) = 0;
  // Makes every parked artifact due now and nudges delivery; returns how many.
  virtual size_t retryParked() = 0;
};

}  // namespace tracer
