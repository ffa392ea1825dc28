#include "report/time_split.h"

#include <kj/vector.h>

#include "contract_json.h"
#include "report/markdown_text.h"

namespace tracer {

namespace {

// The pie on the dark panel Prefect's UI draws charts on: labels light, at
// 14 px. Mermaid colours slices pie1, pie2, ... in the order given: each
// chart names the colours of the parts it shows, so a part keeps its colour.
constexpr const char* PIE_THEME =
    "\"theme\": \"base\", \"themeVariables\": {\"fontSize\": \"14px\", "
    "\"pieTitleTextColor\": \"#e5e7eb\", \"pieLegendTextColor\": \"#e5e7eb\", "
    "\"pieSectionTextColor\": \"#ffffff\", \"pieStrokeColor\": \"#111827\"";
constexpr const char* UNKNOWN_COLOUR = "#9ca3af";
// What rounds to 0.00 s is left out of the pie (a slice of nothing).
constexpr uint64_t PIE_SLICE_MIN_NS = 5000000;

struct Part {
  const char* label;
  const char* colour;
  const char* unknownIf;  // the report field that, unknown, leaves this part unknown
  uint64_t (*ns)(proto::TaskReport::Reader);
};

const Part PARTS[] = {
    {"on-CPU", "#15803d", "cpu.user_ns",
     [](proto::TaskReport::Reader t) { return t.getCpu().getUserNs() + t.getCpu().getSystemNs(); }},
    {"waiting for a CPU", "#ca8a04", "sched.runqueue_wait_ns",
     [](proto::TaskReport::Reader t) { return t.getSched().getRunqueueWaitNs(); }},
    {"disk", "#92400e", "sched.blocked_io_ns",
     [](proto::TaskReport::Reader t) { return t.getSched().getBlockedIoNs(); }},
    {"network", "#2563eb", "sched.sleep_by_cause",
     [](proto::TaskReport::Reader t) { return t.getSched().getSleepByCause().getNetworkNs(); }},
    {"lock", "#b91c1c", "sched.sleep_by_cause",
     [](proto::TaskReport::Reader t) { return t.getSched().getSleepByCause().getLockNs(); }},
    {"child", "#7c3aed", "sched.sleep_by_cause",
     [](proto::TaskReport::Reader t) { return t.getSched().getSleepByCause().getChildNs(); }},
    {"timer", "#6b7280", "sched.sleep_by_cause",
     [](proto::TaskReport::Reader t) { return t.getSched().getSleepByCause().getTimerNs(); }},
    {"pipe", "#ea580c", "sched.sleep_by_cause",
     [](proto::TaskReport::Reader t) { return t.getSched().getSleepByCause().getPipeNs(); }},
    {"other", "#374151", "sched.sleep_by_cause",
     [](proto::TaskReport::Reader t) { return t.getSched().getSleepByCause().getOtherNs(); }},
};
constexpr size_t PART_COUNT = sizeof(PARTS) / sizeof(PARTS[0]);

// A task's sleep whose causes are not known (a late registration, or the
// /proc fallback), when its total is: the pie's own slice.
uint64_t sleepOfUnknownCause(proto::TaskReport::Reader t) {
  bool causes = !listsUnknown(t.getUnknown(), "sched.sleep_by_cause");
  bool total = !listsUnknown(t.getUnknown(), "sched.sleep_ns");
  return !causes && total ? t.getSched().getSleepNs() : 0;
}

}  // namespace

kj::String timeSplitSection(kj::ArrayPtr<const proto::TaskReport::Reader> tasks,
                            kj::ArrayPtr<const bool> shown) {
  uint64_t total[PART_COUNT] = {};
  uint64_t unknownSleep = 0;
  for (auto t: tasks) {
    for (size_t p = 0; p < PART_COUNT; ++p) {
      if (!listsUnknown(t.getUnknown(), PARTS[p].unknownIf)) total[p] += PARTS[p].ns(t);
    }
    unknownSleep += sleepOfUnknownCause(t);
  }
  kj::Vector<kj::String> slices, colours;
  for (size_t p = 0; p < PART_COUNT; ++p) {
    if (total[p] < PIE_SLICE_MIN_NS) continue;
    slices.add(kj::str("  \"", PARTS[p].label, "\" : ", inSeconds(total[p])));
    colours.add(kj::str("\"pie", slices.size(), "\": \"", PARTS[p].colour, "\""));
  }
  if (unknownSleep >= PIE_SLICE_MIN_NS) {
    slices.add(kj::str("  \"asleep, cause unknown\" : ", inSeconds(unknownSleep)));
    colours.add(kj::str("\"pie", slices.size(), "\": \"", UNKNOWN_COLOUR, "\""));
  }
  kj::Vector<kj::String> md;
  md.add(kj::str("\n### Where the time went\n\nThe task runs' threads, added up: on a CPU, "
                 "waiting for one, blocked on disk, and asleep by what they waited on "
                 "(seconds).\n"));
  if (slices.size() > 0) {
    md.add(kj::str("```mermaid\n%%{init: {", PIE_THEME, ", ", kj::strArray(colours, ", "),
                   "}}}%%\npie showData\n", kj::strArray(slices, "\n"), "\n```\n"));
  }

  kj::Vector<kj::String> header;
  for (auto& part: PARTS) header.add(kj::str(part.label));
  kj::Vector<kj::StringPtr> rule;
  for (size_t p = 0; p <= PART_COUNT; ++p) rule.add("---");
  md.add(kj::str("| task | ", kj::strArray(header, " | "), " |\n|", kj::strArray(rule, "|"), "|"));
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (!shown[i]) continue;
    auto t = tasks[i];
    kj::Vector<kj::String> values;
    for (auto& part: PARTS) {
      values.add(listsUnknown(t.getUnknown(), part.unknownIf) ? kj::str("?")
                                                              : inSeconds(part.ns(t)));
    }
    md.add(kj::str("| ", markdownName(t.getTaskName()), " | ", kj::strArray(values, " | "), " |"));
  }
  return kj::strArray(md, "\n");
}

}  // namespace tracer
