#include "observe/attribution_table.h"

#include <capnp/schema.h>
#include <kj/debug.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "contract_json.h"
#include "observe/endpoint_report.h"

namespace tracer {

namespace {

constexpr size_t TOP_COMMANDS = 5;

// What a task whose thread did something before its registration reached us
// cannot know of that time (the rest is exact from its client's reading):
// off-CPU causes if it slept or blocked, socket bytes if it used a socket,
// and FIELDS_WITH_DESCENDANTS if it started a thread or process.
const kj::StringPtr OFF_CPU_CAUSES[] = {"sched.blocked_io_ns", "sched.sleep_ns",
                                        "sched.sleep_by_cause", "net.endpoints",
                                        "net.other_endpoints"};

// Off-CPU time before a registration whose cause goes unseen, at most: up to
// this, or up to OFF_CPU_UNSEEN_SHARE of the task's wall time, the off-CPU
// causes are reported without it (a thread of a busy Python process waits
// for the GIL after nearly every start, which is such a sleep); past it,
// they are unknown. unobserved_ns bounds what is left out.
constexpr kj::Duration OFF_CPU_UNSEEN_MAX = 1 * kj::MILLISECONDS;
constexpr uint64_t OFF_CPU_UNSEEN_SHARE = 100;  // 1 %
const kj::StringPtr SOCKET_BYTES[] = {"net.tx_bytes", "net.rx_bytes", "net.endpoints",
                                      "net.other_endpoints"};
const kj::StringPtr MEMORY_PEAK[] = {"memory.peak_rss_bytes"};
const kj::StringPtr OWN_MEMORY[] = {"memory.own_peak_rss_bytes"};

double cores(uint64_t cpuNs, uint64_t wallNs) {
  return wallNs == 0 ? 0 : static_cast<double>(cpuNs) / static_cast<double>(wallNs);
}

// Registration can reach us well after the task began (a busy sidecar, a
// client that did not wait): longer than this, and the caller's reading is
// not on our clock (a time namespace), so its wall time starts here instead.
constexpr kj::Duration MAX_REGISTRATION_DELAY = 60 * kj::SECONDS;

// The client's reading, with its time on our clock (0 where it is not: the
// collector then takes the thread to have done anything since).
ClientReading readingOf(proto::ThreadBaseline::Reader baseline, kj::TimePoint at,
                        kj::TimePoint registeredAt) {
  ClientReading reading;
  reading.atMonotonicNs = at < registeredAt ? (at - kj::origin<kj::TimePoint>()) / kj::NANOSECONDS
                                            : 0;
  reading.counters = ThreadCounters{baseline.getRuntimeNs(), baseline.getRunDelayNs(),
                                    baseline.getRchar(),     baseline.getWchar(),
                                    baseline.getReadBytes(), baseline.getWriteBytes()};
  reading.voluntarySwitches = baseline.getVoluntarySwitches();
  reading.processHiwaterBytes = baseline.getProcessHiwaterBytes();
  return reading;
}

// Whether the thread has left a CPU of its own accord since its reading
// (`atReading` such switches): by its count now, asked of the kernel once the
// collector follows it (any switch from then on is counted). True if it is gone.
bool sleptSince(uint64_t atReading, pid_t hostTid, ThreadSwitches& switches) {
  KJ_IF_MAYBE(now, switches.voluntary(hostTid)) { return *now != atReading; }
  return true;
}

// When the caller read `baseline`, on the CLOCK_MONOTONIC every process of
// the host shares (and our clock reads).
kj::TimePoint readAt(proto::ThreadBaseline::Reader baseline, kj::TimePoint now) {
  auto at = kj::origin<kj::TimePoint>() + baseline.getAtMonotonicNs() * kj::NANOSECONDS;
  return at <= now && now - at <= MAX_REGISTRATION_DELAY ? at : now;
}

void fillAllocation(proto::TaskReport::Builder report, const Allocation& allocation) {
  auto capacity = report.getAllocation();
  capacity.setCpuCores(allocation.cpuCores);
  capacity.setSource(allocation.cpuSource);
  capacity.setMemoryBytes(allocation.memoryBytes);
  capacity.setMemorySource(allocation.memorySource);
}

}  // namespace

void fillMeasurements(proto::TaskReport::Builder report, const TaskTotals& totals,
                      uint64_t peakSampledRss) {
  const auto& k = totals.kernel;
  // The kernel's utime/stime are tick-based; like its own cputime_adjust(), split
  // the exact runtime in their proportion (all user time when no tick landed).
  uint64_t ticks = k.utime_raw + k.stime_raw;
  uint64_t system = ticks == 0 ? 0
                               : static_cast<uint64_t>(static_cast<double>(k.runtime_ns) *
                                                       k.stime_raw / ticks);
  auto cpu = report.getCpu();
  cpu.setUserNs(k.runtime_ns - system);
  cpu.setSystemNs(system);
  auto sched = report.getSched();
  sched.setRunqueueWaitNs(k.run_delay_ns);
  sched.setBlockedIoNs(k.blocked_io_ns);
  sched.setSleepNs(k.sleep_ns);
  auto byCause = sched.getSleepByCause();
  byCause.setNetworkNs(k.sleep_by_cause_ns[SLEEP_NETWORK]);
  byCause.setLockNs(k.sleep_by_cause_ns[SLEEP_LOCK]);
  byCause.setChildNs(k.sleep_by_cause_ns[SLEEP_CHILD]);
  byCause.setTimerNs(k.sleep_by_cause_ns[SLEEP_TIMER]);
  byCause.setPipeNs(k.sleep_by_cause_ns[SLEEP_PIPE]);
  byCause.setOtherNs(k.sleep_by_cause_ns[SLEEP_OTHER]);
  auto memory = report.getMemory();
  uint64_t exitedPeak = k.max_rss_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  memory.setPeakRssBytes(std::max(exitedPeak, peakSampledRss));
  memory.setOomKills(k.oom_kills);
  memory.setOwnPeakRssBytes(static_cast<uint64_t>(std::max(0ll, k.own_rss_peak_pages)) *
                            static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  auto io = report.getIo();
  io.setReadBytes(k.read_bytes);
  io.setWriteBytes(k.write_bytes);
  io.setRchar(k.rchar);
  io.setWchar(k.wchar);
  auto net = report.getNet();
  net.setTxBytes(k.tx_bytes);
  net.setRxBytes(k.rx_bytes);
  fillEndpoints(report, totals);
  auto proc = report.getProc();
  proc.setSpawned(k.spawned);
  proc.setExecs(k.execs);
  proc.setShortLived(k.short_lived);
  proc.setMaxConcurrent(k.max_concurrent);
  proc.setOutliving(totals.outlivingProcesses);
  report.getEvents().setLost(k.lost);
}

LiveFlowRun::LiveFlowRun(AttributionTable& table, proto::FlowRunInfo::Reader info,
                         Allocation allocation, const PeerCredentials& opener)
    : table(table),
      openSerial(table.nextFlowSerial++),
      id(kj::str(info.getFlowRunId())),
      name(kj::str(info.getFlowName())),
      openedBy(opener),
      capacity(allocation),
      startedAt(table.clock.now()),
      processes(opener.pid, startedAt) {
  where.flow = info.getFlowName();
  where.deploymentId = info.getDeploymentId();
  where.deployment = info.getDeploymentName();
  where.workPool = info.getWorkPool();
  where.workPoolType = info.getWorkPoolType();
  ++table.liveFlowRuns;
  // A second opening of an id (a client re-opening after a reconnect) is the
  // one joiners find from now on. Its key too: the older one's id may go first.
  table.liveFlowRunsById.erase(id);
  table.liveFlowRunsById.insert(id, this);
}

kj::Promise<void> LiveFlowRun::finish(proto::RunState state) {
  KJ_REQUIRE(!finished, "flow run already finished", id);
  finished = true;
  table.flowRunEnded(*this, state);
  --table.liveFlowRuns;
  ++(state == proto::RunState::CRASHED ? table.crashedFlowRuns : table.finishedFlowRuns);
  auto stateName = KJ_ASSERT_NONNULL(enumName(state));  // checked at the RPC door
  auto now = table.clock.now();
  uint64_t wall = (now - startedAt) / kj::NANOSECONDS;
  table.log.debug(kj::str("flow run ", stateName, " after ", wall / 1000000, " ms"), {id, nullptr});
  return table.sink.flowRunFinished(
      where,
      FlowRunSummary{kj::str(id), kj::str(name), kj::str(where.deploymentId.c_str()),
                     kj::str(where.deployment.c_str()), kj::str(stateName), wall, reportsNotKept},
      footprintReport(state, now), reports.releaseAsArray());
}

kj::Own<KeptReport> LiveFlowRun::footprintReport(proto::RunState state, kj::TimePoint now) {
  processes.sampleLast(now);
  auto kept = kj::refcounted<KeptReport>(128);
  kept->slot = 0;
  kept->lingering = false;
  auto report = kept->message.initRoot<proto::TaskReport>();
  report.setFlowRunId(id);
  report.setState(state);
  report.setWallNs((now - startedAt) / kj::NANOSECONDS);
  uint32_t oomKills = 0;
  for (auto& task: reports) {
    oomKills += task->message.getRoot<proto::TaskReport>().getMemory().getOomKills();
  }
  report.getMemory().setOomKills(oomKills);
  fillAllocation(report, capacity);
  fillFootprint(report, processes.summary());
  return kept;
}

FlowRunHold::FlowRunHold(kj::Own<LiveFlowRun> run, bool joined)
    : flow(kj::mv(run)), joined(joined) {}

FlowRunHold::~FlowRunHold() noexcept(false) {
  if (released) return;
  if (!joined) {
    flow->table.log.warn("flow run ended as crashed: its client went away without finishing it",
                         {flow->id, nullptr});
  }
  // Nobody waits for the crashed run's artifacts: the sink stores them all the same.
  finish(proto::RunState::CRASHED);
}

kj::Promise<void> FlowRunHold::finish(proto::RunState state) {
  KJ_REQUIRE(!released, "flow run scope already finished", flow->id);
  released = true;
  if (joined) {
    flow->table.log.debug("a joined process let go of the flow run", {flow->id, nullptr});
    return kj::READY_NOW;
  }
  return flow->finish(state);
}

LiveTask::LiveTask(AttributionTable& table, LiveFlowRun& flow,
                   proto::TaskRunInfo::Reader info, HostThread thread,
                   const PeerCredentials& caller)
    : table(table),
      slot(table.slotFor(thread, info)),
      hostTid(thread.tid),
      caller(caller),
      taskRunId(kj::str(info.getTaskRunId())),
      taskName(kj::str(info.getTaskName())),
      taskKey(kj::str(info.getTaskKey())),
      tags(KJ_MAP(tag, info.getTags()) { return kj::str(tag); }),
      flow(kj::addRef(flow)),
      startedAt(table.clock.now()),
      lastSampleAt(startedAt),
      ownProcess(info.getOwnProcess()) {
  startTimeNs = info.getStartTimeNs();
  LiveTask* outer = joinThread(info.getNestedIn());
  // A registration the collector refuses (the thread is gone, a map is full)
  // leaves nothing behind: no destructor runs for a half-built task.
  KJ_ON_SCOPE_FAILURE(leaveThread());
  kj::Maybe<uint32_t> outerSlot;
  if (outer != nullptr) outerSlot = outer->slot;
  if (info.hasBaseline()) {
    // Start is one-way: the task has run since its client's reading.
    auto baseline = info.getBaseline();
    read = true;
    auto registeredAt = startedAt;
    startedAt = lastSampleAt = readAt(baseline, registeredAt);
    auto reading = readingOf(baseline, startedAt, registeredAt);
    // Within its client's wait, the thread slept in that wait, not in the
    // task; within OFF_CPU_UNSEEN_MAX, whatever it slept is that little.
    auto gap = registeredAt - startedAt;
    bool negligible = gap <= kj::max(OFF_CPU_UNSEEN_MAX, info.getStartWaitNs() * kj::NANOSECONDS);
    unobservedNs = gap / kj::NANOSECONDS;
    bool unseenSleepMatters = false;
    if (counted) {
      unfollowed = table.collector.track(slot, thread, reading, ownProcess, outerSlot, caller.uid);
      hiwaterUnread = baseline.getProcessHiwaterBytes() == 0;  // an earlier client: no counts
      // Whether that was negligible for the task's causes is known at its
      // finish (how long a sleep that began before went on, its wall time);
      // an outer task and the count of late tasks take OFF_CPU_UNSEEN_MAX.
      bool maySleepUnseen =
          !unfollowed.followed && gap > info.getStartWaitNs() * kj::NANOSECONDS;
      if (maySleepUnseen && !hiwaterUnread && table.collector.tellsSwitchesBeforeFollowed()) {
        // Its finish tells (no query to the kernel on the intake's path).
        switchesAtReading = reading.voluntarySwitches;
        sleepUnseenAsked = true;
      } else {
        sleptUnfollowed = maySleepUnseen &&
                          (hiwaterUnread || sleptSince(reading.voluntarySwitches, hostTid,
                                                       table.switches));
      }
      unseenSleepMatters = sleptUnfollowed && !negligible;
      faultsUnseen = !unfollowed.followed && !negligible;
      if (unfollowed.followed) unobservedNs = 0;  // the kernel saw it from the mark on
      if (outer != nullptr) {
        // Meanwhile the thread counted for the outer task: what the kernel
        // counts as it happens went there (the thread counters are set right).
        outer->lentUnfollowed(unfollowed, unseenSleepMatters);
      }
    }
    if (unfollowed.startedThreadOrProcess || unfollowed.usedSocket || unseenSleepMatters ||
        hiwaterUnread) {
      ++table.lateTasks;
    }
  } else if (counted) {
    table.collector.track(slot, thread, nullptr, ownProcess, outerSlot, caller.uid);
  }
  table.live.insert(slot, this);
}

void LiveTask::lentUnfollowed(const Unfollowed& did, bool slept) {
  nestedUnfollowed.startedThreadOrProcess |= did.startedThreadOrProcess;
  nestedUnfollowed.usedSocket |= did.usedSocket;
  nestedSlept |= slept;
}

LiveTask* LiveTask::joinThread(kj::StringPtr nestedIn) {
  auto& on = table.threads.findOrCreate(hostTid, [&]() {
    return kj::HashMap<pid_t, AttributionTable::ThreadTasks>::Entry{hostTid, {}};
  });
  LiveTask* outer = nullptr;
  if (!on.shared && on.latest != nullptr) {
    if (nestedIn.size() > 0 && on.latest->taskRunId == nestedIn) {
      outer = on.latest;
    } else {
      on.shared = true;
    }
  }
  if (on.shared) {
    counted = false;
    if (sharedWith == 0) ++table.sharedThreadTasks;
    for (auto* other = on.latest; other != nullptr; other = other->startedBefore) {
      ++sharedWith;
      if (other->sharedWith++ == 0) ++table.sharedThreadTasks;
    }
  }
  startedBefore = on.latest;
  on.latest = this;
  return outer;
}

LiveTask* LiveTask::leaveThread() {
  auto& on = KJ_ASSERT_NONNULL(table.threads.find(hostTid));
  LiveTask* outer = nullptr;
  if (!on.shared && on.latest == this) outer = startedBefore;
  LiveTask** link = &on.latest;
  while (*link != this) {
    link = &KJ_ASSERT_NONNULL(*link, "a task left a thread it was not on").startedBefore;
  }
  *link = startedBefore;
  if (on.latest == nullptr) table.threads.erase(hostTid);
  return outer;
}

LiveTask::~LiveTask() noexcept(false) {
  if (finished) return;
  table.log.warn("task ended as crashed: its client went away without finishing it",
                 {flow->flowRunId(), taskRunId});
  end(proto::RunState::CRASHED, nullptr, nullptr);
}

void LiveTask::finish(proto::RunState state, kj::Maybe<proto::TaskReport::Builder> report,
                      kj::Maybe<proto::ThreadBaseline::Reader> end) {
  KJ_REQUIRE(!finished, "task already finished", taskRunId);
  this->end(state, report, read ? end : nullptr);
}

void LiveTask::addSample(const TaskSample& sample, kj::TimePoint now) {
  uint64_t ns = (now - lastSampleAt) / kj::NANOSECONDS;
  uint64_t cpu = sample.cpuNs > lastSampleCpuNs ? sample.cpuNs - lastSampleCpuNs : 0;
  if (ns > 0) windows.add(ns, cpu);
  lastSampleAt = now;
  lastSampleCpuNs = std::max(lastSampleCpuNs, sample.cpuNs);
  peakSampledRss = std::max(peakSampledRss, sample.rssBytes);
  lastSampledRss = sample.rssBytes;
}

void LiveTask::threadExited(const ThreadExit& exit) {
  // Command names are the task's to choose: past a bound they share one entry.
  kj::StringPtr name = exit.comm;
  if (commands.get() == nullptr) commands = kj::heap<kj::HashMap<kj::String, CommandCpu>>();
  if (commands->size() >= MAX_COMMANDS && commands->find(name) == nullptr) name = "(others)";
  auto& command = commands->findOrCreate(name, [&]() {
    return kj::HashMap<kj::String, CommandCpu>::Entry{kj::str(name), CommandCpu{}};
  });
  if (exit.isLeader) ++command.count;
  command.cpuNs += exit.cpuNs;
}

void LiveTask::end(proto::RunState state, kj::Maybe<proto::TaskReport::Builder> reportOut,
                   kj::Maybe<proto::ThreadBaseline::Reader> endReading) {
  finished = true;
  LiveTask* outer = leaveThread();
  kj::Maybe<uint32_t> outerSlot;
  if (outer != nullptr) outerSlot = outer->slot;
  // Finish is one-way: the task ended at its client's reading, if it sent one.
  auto now = table.clock.now();
  kj::Maybe<ClientReading> ended;
  KJ_IF_MAYBE(e, endReading) {
    // Off our clock (a time namespace): its counters still hold, its time is now.
    auto at = kj::max(readAt(*e, now), startedAt);
    ended = readingOf(*e, at, now);
    now = at;
  }
  kj::Maybe<const ClientReading&> endedRef;
  KJ_IF_MAYBE(e, ended) { endedRef = *e; }
  // Still in `live` here: exits drained by finish() must find this task.
  auto totals =
      counted ? table.collector.finish(slot, hostTid, endedRef, outerSlot) : TaskTotals{};
  table.live.erase(slot);
  wokeUnseenNs = totals.wokeUnseenNs;
  if (sleepUnseenAsked) {
    KJ_IF_MAYBE(before, totals.switchesBeforeFollowed) {
      sleptUnfollowed = *before != switchesAtReading;
    } else {
      sleptUnfollowed = sleptSince(switchesAtReading, hostTid, table.switches);
    }
    // (Asked only when it came later than the client's wait: then within
    // OFF_CPU_UNSEEN_MAX is what the registration took as negligible.)
    if (sleptUnfollowed && unobservedNs > uint64_t(OFF_CPU_UNSEEN_MAX / kj::NANOSECONDS)) {
      // As its registration would have, had it known then.
      if (outer != nullptr) outer->lentUnfollowed(Unfollowed{}, true);
      if (!unfollowed.startedThreadOrProcess && !unfollowed.usedSocket) ++table.lateTasks;
    }
  }
  if (outer != nullptr) {
    outer->nestedTasks += 1 + nestedTasks;
    outer->nestedCpuNs += totals.kernel.runtime_ns + nestedCpuNs;
    outer->lentUnfollowed(totals.pastEnd, false);  // the thread was the outer's again
  }
  addSample(TaskSample{totals.kernel.runtime_ns, totals.registeredRssBytes}, now);

  capnp::MallocMessageBuilder scratch;
  auto report = reportOut == nullptr ? scratch.initRoot<proto::TaskReport>()
                                     : KJ_ASSERT_NONNULL(reportOut);
  uint64_t wall = (now - startedAt) / kj::NANOSECONDS;
  report.setTaskRunId(taskRunId);
  report.setFlowRunId(flow->flowRunId());
  report.setTaskName(taskName);
  report.setState(state);
  report.setWallNs(wall);
  report.setStartTimeNs(startTimeNs);
  report.setTaskKey(taskKey);
  report.setCollector(table.collector.name());
  fillMeasurements(report, totals, peakSampledRss);

  auto cpu = report.getCpu();
  cpu.setAvgCores(cores(totals.kernel.runtime_ns, wall));
  auto windowCores = windows.cores();
  cpu.setP95Cores(windowCores.p95);
  cpu.setMaxCores(windowCores.max);

  report.getMemory().setSharedProcess(!ownProcess);
  kj::Vector<std::pair<kj::StringPtr, const CommandCpu*>> ranked;
  if (commands.get() != nullptr) {
    for (auto& entry: *commands) ranked.add(entry.key, &entry.value);
  }
  std::sort(ranked.begin(), ranked.end(),
            [](auto& a, auto& b) { return a.second->cpuNs > b.second->cpuNs; });
  auto top = report.getProc().initTop(std::min(ranked.size(), TOP_COMMANDS));
  for (auto i: kj::indices(top)) {
    top[i].setComm(ranked[i].first);
    top[i].setCount(ranked[i].second->count);
    top[i].setCpuNs(ranked[i].second->cpuNs);
  }

  fillAllocation(report, flow->allocation());
  report.setUnobservedNs(unobservedNs);
  auto thread = report.getThread();
  thread.setNestedTasks(nestedTasks);
  thread.setNestedCpuNs(nestedCpuNs);
  thread.setSharedWith(sharedWith);
  kj::Vector<kj::StringPtr> unknown;
  auto addUnknown = [&](kj::ArrayPtr<const kj::StringPtr> fields) {
    for (auto field: fields) {
      bool listed = false;
      for (auto known: unknown) listed = listed || known == field;
      if (!listed) unknown.add(field);
    }
  };
  kj::Vector<kj::String> why;
  if (table.collector.unknownFields().size() > 0) {
    addUnknown(table.collector.unknownFields());
    why.add(kj::str(table.collector.name(), " collector: ", table.collector.degradedReason()));
  }
  // What the thread did before its registration that nothing followed.
  auto unfollowedBefore = [&](bool did, kj::ArrayPtr<const kj::StringPtr> fields,
                              kj::StringPtr what) {
    if (!did) return;
    addUnknown(fields);
    why.add(kj::str("in the ", unobservedNs / 1000, " us before its registration reached the "
                    "sidecar, ", what));
  };
  // What it slept unseen: within the moment before its registration, or, if
  // it was asleep then, until it first woke.
  uint64_t unseenSleepNs = unobservedNs;
  uint64_t startNs = (startedAt - kj::origin<kj::TimePoint>()) / kj::NANOSECONDS;
  if (wokeUnseenNs > startNs) unseenSleepNs = kj::max(unseenSleepNs, wokeUnseenNs - startNs);
  bool sleepUnseen = sleptUnfollowed &&
                     unseenSleepNs > kj::max(uint64_t(OFF_CPU_UNSEEN_MAX / kj::NANOSECONDS),
                                             wall / OFF_CPU_UNSEEN_SHARE);
  unfollowedBefore(sleepUnseen, OFF_CPU_CAUSES,
                   unseenSleepNs > unobservedNs
                       ? kj::str("it slept or blocked, and slept on unseen until ",
                                 unseenSleepNs / 1000, " us into the task")
                       : kj::str("it slept or blocked: why it was off-CPU then was not seen"));
  unfollowedBefore(unfollowed.usedSocket, SOCKET_BYTES,
                   "it used a socket: those bytes were not counted");
  unfollowedBefore(faultsUnseen, OWN_MEMORY,
                   "the memory its thread faulted in then was not seen");
  unfollowedBefore(hiwaterUnread, MEMORY_PEAK,
                   "its memory may have peaked: its client sent no high-water mark");
  unfollowedBefore(unfollowed.startedThreadOrProcess, FIELDS_WITH_DESCENDANTS,
                   "it started a thread or process (or one of its process exited): "
                   "nothing followed it");
  if (sharedWith > 0) {
    addUnknown(FIELDS_WITH_DESCENDANTS);
    why.add(kj::str("it shared its thread with ", sharedWith, " other task",
                    sharedWith == 1 ? "" : "s", " running at the same time, not nested in it "
                    "(async tasks of one event loop): what the thread did is no one task's"));
  }
  auto pastEnd = [&](bool did, kj::ArrayPtr<const kj::StringPtr> fields, kj::StringPtr what) {
    if (!did) return;
    addUnknown(fields);
    why.add(kj::str("after it ended, before its finish reached the sidecar, its thread ", what,
                    ": that was counted in it"));
  };
  pastEnd(totals.pastEnd.usedSocket, SOCKET_BYTES, "used a socket");
  pastEnd(totals.pastEnd.startedThreadOrProcess, FIELDS_WITH_DESCENDANTS,
          "started a thread or process");
  auto lent = [&](bool did, kj::ArrayPtr<const kj::StringPtr> fields, kj::StringPtr what) {
    if (!did) return;
    addUnknown(fields);
    why.add(kj::str("a task called inside it ", what, " while its registration or finish was on "
                    "the way: that was counted in this task"));
  };
  lent(nestedUnfollowed.usedSocket, SOCKET_BYTES, "used a socket");
  lent(nestedSlept, OFF_CPU_CAUSES, "slept or blocked");
  lent(nestedUnfollowed.startedThreadOrProcess, FIELDS_WITH_DESCENDANTS,
       "started a thread or process");
  addUnknown(totals.unknown);
  for (auto& line: totals.unknownWhy) why.add(kj::mv(line));
  auto unknownOut = report.initUnknown(unknown.size());
  for (auto i: kj::indices(unknown)) unknownOut.set(i, unknown[i]);
  auto whyOut = report.initUnknownWhy(why.size());
  for (auto i: kj::indices(why)) whyOut.set(i, why[i]);

  table.lostInTasks += totals.kernel.lost;
  ++(state == proto::RunState::CRASHED ? table.crashedTasks : table.finishedTasks);
  auto kept = table.keep(report.asReader(), slot, totals.outlivingProcesses > 0);
  TaskPlace place = flow->place();
  place.task = taskName.cStr();
  place.taskKey = taskKey.cStr();
  for (auto& tag: tags) place.tags.push_back(tag.cStr());
  table.sink.taskRunFinished(place, flow->flowName(), kj::addRef(*kept), reportOut);
  // A task that ends after its flow run (a client that finished the run
  // first) is in the recent reports only: the run's artifacts are out.
  if (flow->finished) return;
  if (flow->reports.size() < AttributionTable::FLOW_RUN_REPORTS_MAX) {
    flow->reports.add(kj::mv(kept));
  } else {
    ++flow->reportsNotKept;
  }
}

void LiveTask::describe(proto::LiveTask::Builder out) const {
  out.setTaskRunId(taskRunId);
  out.setTaskName(taskName);
  out.setFlowRunId(flow->flowRunId());
  out.setFlowName(flow->flowName());
  out.setHostTid(hostTid);
  out.setCallerPid(caller.pid);
  out.setCallerUid(caller.uid);
  out.setRunningNs((table.clock.now() - startedAt) / kj::NANOSECONDS);
  if (windows.size() > 0) out.setCores(windows.lastCores());
  out.setRssBytes(lastSampledRss);
  auto wait = table.collector.currentWait(hostTid);
  out.setWaitingOn(wait.on);
  if (wait.endpoint.family != 0) describeEndpoint(wait.endpoint, out.initWaitingOnEndpoint());
  if (wait.sinceNs > 0) {  // the kernel's clock is CLOCK_MONOTONIC, as ours
    uint64_t nowNs = (table.clock.now() - kj::origin<kj::TimePoint>()) / kj::NANOSECONDS;
    out.setWaitingNs(nowNs > wait.sinceNs ? nowNs - wait.sinceNs : 0);
  }
}

AttributionTable::AttributionTable(Collector& collector, const kj::MonotonicClock& clock,
                                   RunSink& sink, Log& log)
    : collector(collector), clock(clock), sink(sink), log(log) {
  if (switches.source() != "taskstats") {
    log.info(kj::str("a late registration's voluntary switches come from /proc (",
                     switches.source(), ")"));
  }
}

kj::Own<FlowRunHold> AttributionTable::openFlowRun(proto::FlowRunInfo::Reader info,
                                                   const PeerCredentials& caller) {
  // The caller is the flow-run process: its cgroup holds the run's limits.
  auto allocation = resolveAllocation(info.getCpuCores(), info.getMemoryBytes(), caller.pid);
  auto hold = kj::heap<FlowRunHold>(kj::refcounted<LiveFlowRun>(*this, info, allocation, caller),
                                    false);
  sink.flowRunOpened(hold->run().place());
  return hold;
}

kj::Maybe<LiveFlowRun&> AttributionTable::liveFlowRun(kj::StringPtr flowRunId) {
  KJ_IF_MAYBE(flow, liveFlowRunsById.find(flowRunId)) { return **flow; }
  return nullptr;
}

kj::Maybe<proto::RunState> AttributionTable::endedFlowRun(kj::StringPtr flowRunId) const {
  KJ_IF_MAYBE(state, endedById.find(flowRunId)) { return *state; }
  return nullptr;
}

kj::Own<FlowRunHold> AttributionTable::joinFlowRun(LiveFlowRun& flow,
                                                   const PeerCredentials& joiner) {
  flow.footprint().addProcess(joiner.pid);
  return kj::heap<FlowRunHold>(kj::addRef(flow), true);
}

void AttributionTable::flowRunEnded(const LiveFlowRun& flow, proto::RunState state) {
  KJ_IF_MAYBE(newest, liveFlowRunsById.find(flow.flowRunId())) {
    if (*newest == &flow) liveFlowRunsById.erase(flow.flowRunId());
  }
  KJ_IF_MAYBE(known, endedById.find(flow.flowRunId())) {
    *known = state;
    return;
  }
  if (endedOrder.size() < ENDED_REMEMBERED) {
    endedOrder.add(kj::str(flow.flowRunId()));
  } else {
    endedById.erase(endedOrder[nextForgotten]);
    endedOrder[nextForgotten] = kj::str(flow.flowRunId());
    nextForgotten = (nextForgotten + 1) % ENDED_REMEMBERED;
  }
  endedById.insert(kj::str(flow.flowRunId()), state);
}

kj::Own<LiveTask> AttributionTable::startTask(LiveFlowRun& flow,
                                              proto::TaskRunInfo::Reader info,
                                              HostThread thread, const PeerCredentials& caller) {
  return kj::heap<LiveTask>(*this, flow, info, thread, caller);
}

void AttributionTable::sample() {
  auto samples = collector.sample();
  auto now = clock.now();
  for (auto& entry: live) {
    KJ_IF_MAYBE(sample, samples.find(entry.key)) {
      entry.value->addSample(*sample, now);
    } else {
      entry.value->addSample(TaskSample{entry.value->lastSampleCpuNs, 0}, now);
    }
  }
  for (auto& entry: liveFlowRunsById) entry.value->footprint().sample(now);
  updateLingering();
  sink.tick(*this);
}

uint32_t AttributionTable::slotFor(HostThread thread, proto::TaskRunInfo::Reader info) {
  // A thread with live tasks counts for one of them: a mark there is not this task's.
  uint32_t mark = info.hasBaseline() ? info.getBaseline().getStartMark() : 0;
  if (mark != 0 && threads.find(thread.tid) == nullptr) {
    KJ_IF_MAYBE(marked, collector.claimMarkedStart(thread, mark)) { return *marked; }
  }
  return nextSlot++;
}

void AttributionTable::threadExited(const ThreadExit& exit) {
  KJ_IF_MAYBE(task, live.find(exit.slot)) { (*task)->threadExited(exit); }
}

kj::Own<KeptReport> AttributionTable::keep(proto::TaskReport::Reader report, uint32_t slot,
                                           bool lingering) {
  // A word more than the report: the root pointer.
  auto kept = kj::refcounted<KeptReport>(report.totalSize().wordCount + 1);
  kept->message.setRoot(report);
  kept->slot = slot;
  kept->lingering = lingering;
  if (!lingering) collector.release(slot);
  if (recent.size() < KEPT_REPORTS) {
    recent.add(kj::addRef(*kept));
    return kept;
  }
  auto& oldest = recent[nextRecent];
  if (oldest->lingering) {  // no longer brought up to date: it is forgotten
    oldest->lingering = false;
    collector.release(oldest->slot);
  }
  oldest = kj::addRef(*kept);
  nextRecent = (nextRecent + 1) % KEPT_REPORTS;
  return kept;
}

void AttributionTable::updateLingering() {
  for (auto& kept: recent) {
    if (!kept->lingering) continue;
    auto totals = collector.lingering(kept->slot);
    kept->row = nullptr;  // its numbers change below
    auto report = kept->message.getRoot<proto::TaskReport>();
    fillMeasurements(report, totals, report.getMemory().getPeakRssBytes());
    if (totals.outlivingProcesses == 0) {
      kept->lingering = false;
      collector.release(kept->slot);
    }
  }
}

void AttributionTable::fillStatus(proto::SidecarStatus::Builder status) {
  status.setCollector(collector.name());
  status.setCollectorNote(collector.degradedReason());
  status.setLiveFlowRuns(liveFlowRuns);
  status.setLiveTasks(live.size());
  status.setFinishedFlowRuns(finishedFlowRuns);
  status.setCrashedFlowRuns(crashedFlowRuns);
  status.setFinishedTasks(finishedTasks);
  status.setCrashedTasks(crashedTasks);
  status.setLateTasks(lateTasks);
  status.setSharedThreadTasks(sharedThreadTasks);
  status.setEventsLost(lostInTasks + collector.unattributedLost());
}

void AttributionTable::describeLiveTasks(capnp::List<proto::LiveTask>::Builder out) const {
  uint i = 0;
  for (auto& entry: live) entry.value->describe(out[i++]);
}

kj::Vector<LiveRuns::FlowRun> AttributionTable::runningFlowRuns() const {
  kj::Vector<LiveRuns::FlowRun> runs(liveFlowRunsById.size());
  auto now = clock.now();
  for (auto& entry: liveFlowRunsById) {
    const LiveFlowRun& flow = *entry.value;
    if (flow.isFinished()) continue;
    auto& where = flow.place();
    runs.add(LiveRuns::FlowRun{
        FlowRunSummary{kj::str(flow.flowRunId()), kj::str(flow.flowName()),
                       kj::str(where.deploymentId), kj::str(where.deployment), kj::str("running"),
                       uint64_t((now - flow.openedAt()) / kj::NANOSECONDS)},
        &where, flow.finishedTasks()});
  }
  return runs;
}

kj::Own<capnp::MallocMessageBuilder> AttributionTable::liveTasksOf(kj::StringPtr flowRunId) const {
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto results = message->initRoot<proto::Admin::LiveTasksResults>();
  kj::Vector<const LiveTask*> tasks;
  for (auto& entry: live) {
    if (entry.value->flow->flowRunId() == flowRunId) tasks.add(entry.value);
  }
  auto out = results.initTasks(tasks.size());
  for (auto i: kj::indices(tasks)) tasks[i]->describe(out[i]);
  return message;
}

uint32_t AttributionTable::reportCount(uint32_t limit) const {
  return std::min<size_t>(limit, recent.size());
}

void AttributionTable::recentReports(uint32_t limit,
                                     capnp::List<proto::TaskReport>::Builder out) {
  size_t n = reportCount(limit);
  if (n == 0) return;
  // Newest first: the one before nextRecent (the ring's oldest once full).
  size_t newest = (nextRecent + recent.size() - 1) % recent.size();
  for (size_t i = 0; i < n; ++i) {
    auto& kept = recent[(newest + recent.size() - i) % recent.size()];
    out.setWithCaveats(i, kept->message.getRoot<proto::TaskReport>().asReader());
  }
}

}  // namespace tracer
