@0xa891fd3a16c97837;
# The only contract between the Prefect plugin (through libtracer_client.so),
# tracerctl and tracer-sidecar.
#
# Capabilities are lifetimes: a FlowRunScope stands for a flow run that is in
# progress, and for the task runs started on it. Dropping one without calling
# finish() (the client crashed, the connection was lost) ends that run, and its
# tasks not finished, as `crashed`; the sidecar still reports what it saw. A
# task is not a capability of its own (one costs the sidecar some 500 bytes for
# the task's life): it is a key its client chooses, unique among the scope's
# live tasks.
#
# Evolve by adding fields at the end (new ordinals); never rename or renumber.
# Field names map to snake_case JSON names (docs/architecture.md; taskRunId <->
# task_run_id, cpu.userNs <-> cpu.user_ns): see contract_json.h.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tracer::proto");

enum RunState {
  completed @0;
  failed @1;
  cancelled @2;
  crashed @3;
  # Set by the sidecar when a scope is dropped without finish().
}

struct FlowRunInfo {
  flowRunId @0 :Text;
  flowName @1 :Text;
  deploymentId @2 :Text;
  deploymentName @3 :Text;
  workPool @4 :Text;
  workerName @5 :Text;
  pid @6 :Int32;
  # The flow-run process, in the caller's PID namespace. 0 = the caller itself.
  cpuCores @7 :Float64;
  # Declared allocation from the work pool's job variables; 0 = not declared.
  memoryBytes @8 :UInt64;
  workPoolType @9 :Text;
  # kubernetes, ecs, docker or process: the form recommendations take.
  joinRunningFlowRun @10 :Bool;
  # This process runs tasks of a flow run another process opened (a
  # ProcessPoolTaskRunner child, a subprocess of the flow-run process): join
  # the live run with this flowRunId instead of opening a second one. Its tasks
  # are that run's (one artifact set), its FlowRunInfo stays the opener's, and
  # this scope's finish() or drop only lets go of the run; the opener ends it.
  # Only a process of the opener's uid in its PID namespace (or root) may join.
  # No live run by this id: a new run, as without the flag. One that already
  # ended: refused, rather than reported twice.
}

struct TaskRunInfo {
  taskRunId @0 :Text;
  taskName @1 :Text;
  taskKey @2 :Text;
  tags @3 :List(Text);
  tid @4 :Int32;
  # Thread (or process) to attribute, in the caller's PID namespace. The client
  # library fills in gettid() of the calling thread.
  startTimeNs @5 :Int64;
  # Caller's CLOCK_REALTIME at task start, nanoseconds since the epoch.
  ownProcess @6 :Bool;
  # tid is a process started for this task (tracerctl run), not a thread of a
  # shared process: its memory is the task's own.
  baseline @7 :ThreadBaseline;
  # The thread's counters as the task started, read on that thread by the
  # client library. Unset: the sidecar reads them when the registration reaches
  # it, and the task's measurements start then.
  startWaitNs @8 :UInt64;
  # How long the caller waits for the answer (0: one-way, the plugin's way). A
  # registration within that of the baseline found the thread still waiting
  # in the client library: its going off-CPU then was the wait, not the task.
  nestedIn @9 :Text;
  # The task run this one was called inside, on the same thread and in the
  # same flow of control (a task calling a task inline, or awaiting it): the
  # thread counts for this one until it finishes, then for that one again.
  # Empty otherwise; a task that starts on a thread another task is running
  # on without being nested in it (async tasks on one event loop) shares it.
}

struct ThreadBaseline {
  # A thread's kernel accounting at one moment: wherever the registration of
  # its task is delayed (a busy or stopped sidecar, a client that does not
  # wait), the task is measured from here.
  atMonotonicNs @0 :UInt64;
  # CLOCK_MONOTONIC when the counters were read: where the task's wall time starts.
  runtimeNs @1 :UInt64;
  runDelayNs @2 :UInt64;
  rchar @3 :UInt64;
  wchar @4 :UInt64;
  readBytes @5 :UInt64;
  writeBytes @6 :UInt64;
  voluntarySwitches @7 :UInt64;
  # Times the thread had gone off-CPU of its own accord (slept or blocked):
  # unchanged at its registration, it spent no time off-CPU before it but
  # waiting for a CPU, which runDelayNs has.
  processHiwaterBytes @8 :UInt64;
  # Its process's resident-memory high-water mark: a peak the process reaches
  # during the task, before its registration or after, is above this. 0: the
  # client read neither of these two (an earlier version).
  startMark @9 :UInt32;
  # The mark the thread left in the kernel just before this reading, at a
  # task's start (bpf/task_start.bpf.c): where the kernel lets the sidecar
  # see it, the thread has counted for the task since, and the registration
  # claims that count by this number. 0: none (an end reading, an earlier client).
}

struct TaskReport {
  # What a task did (docs/observer.md says what each field means; JSON: snake_case).
  taskRunId @0 :Text;
  flowRunId @1 :Text;
  taskName @2 :Text;
  state @3 :RunState;
  wallNs @4 :UInt64;
  # Task start -> finish, measured by the sidecar.
  collector @5 :Text;
  # "bpf", or "procfs" (degraded: see unknown and status.collector_note).

  cpu :group {
    # CPU of the task's threads and all their descendants, exited ones included.
    userNs @9 :UInt64;
    systemNs @10 :UInt64;
    avgCores @11 :Float64;
    p95Cores @12 :Float64;
    maxCores @13 :Float64;
    # avg over the whole task; p95 and max over 1 s intervals.
  }

  sched :group {
    runqueueWaitNs @14 :UInt64;
    # Runnable but waiting for a CPU (contention).
    blockedIoNs @15 :UInt64;
    # Off-CPU in uninterruptible sleep (D state: disk, page faults).
    sleepNs @16 :UInt64;
    # Off-CPU in interruptible sleep (S state: network, locks, timers).
    sleepByCause :group {
      # sleepNs by what the task waited on; they add up to it
      # (docs/observer.md, "Sleep by cause").
      networkNs @45 :UInt64;
      # An IP socket: reading, writing, connecting, accepting, or a poll,
      # select or epoll wait on a set that holds one.
      lockNs @46 :UInt64;
      # A futex (locks, conditions, Python's GIL) or flock.
      childNs @47 :UInt64;
      # A child process (wait4, waitid).
      timerNs @48 :UInt64;
      # A sleep (nanosleep, clock_nanosleep), or a wait its own timeout ended.
      pipeNs @49 :UInt64;
      # A pipe.
      otherNs @50 :UInt64;
      # Anything else: files, Unix sockets, eventfds, signals.
    }
  }

  memory :group {
    peakRssBytes @17 :UInt64;
    oomKills @18 :UInt32;
    sharedProcess @19 :Bool;
    # The task is a thread of a process it shares: peak RSS is process-wide.
    ownPeakRssBytes @52 :UInt64;
    # The most resident memory the task's own threads (and children) had
    # faulted in and not given back: of two thread tasks of one process, the
    # one that allocates is the one that shows it (docs/observer.md).
  }

  io :group {
    readBytes @20 :UInt64;
    writeBytes @21 :UInt64;
    # Storage bytes (task I/O accounting).
    rchar @22 :UInt64;
    wchar @23 :UInt64;
    # Bytes through read/write-family syscalls.
  }

  net :group {
    txBytes @24 :UInt64;
    rxBytes @25 :UInt64;
    # TCP/UDP socket bytes (IPv4 and IPv6).
    endpoints @53 :List(Endpoint);
    # The endpoints the task waited on longest (then moved most bytes with),
    # at most 10 (docs/observer.md, "Endpoints").
    otherEndpoints :group {
      # What the listed endpoints do not hold of sched.sleep_by_cause.network_ns,
      # txBytes and rxBytes: more endpoints, sockets with no peer (unconnected
      # UDP), endpoints past the task's table in the kernel.
      waitNs @54 :UInt64;
      txBytes @55 :UInt64;
      rxBytes @56 :UInt64;
      count @57 :UInt32;
      # Endpoints seen and not listed; at least this many when unlisted is set.
      unlisted @58 :Bool;
      # The task used more endpoints than its table in the kernel holds (64).
    }
  }

  proc :group {
    spawned @6 :UInt64;
    # Processes forked by the task's threads and their descendants.
    execs @7 :UInt64;
    shortLived @26 :UInt64;
    # Of the spawned processes, those that lived less than 100 ms.
    maxConcurrent @27 :UInt64;
    top @28 :List(ProcessCpu);
    # Exited processes by command, most CPU first.
    outliving @29 :UInt32;
    # Processes of the task still running when it finished; they keep counting
    # toward it (see tracerctl reports).
  }

  allocation :group {
    cpuCores @30 :Float64;
    memoryBytes @31 :UInt64;
    source @32 :Text;
    # Where cpu_cores came from: "declared" > "cgroup" > "policy" > "host".
    memorySource @33 :Text;
  }

  events :group {
    lost @8 :UInt64;
    # Kernel-side events dropped while the task ran (target: always 0).
  }

  unknown @34 :List(Text);
  # Fields the collector cannot know (JSON null instead of a number).

  policy @35 :Text;
  # The policy that applied (first match in file order); empty without one.
  findings @36 :List(Finding);
  taskArtifact @51 :Bool;
  # A finding reached its policy's findings.task_artifact: the task gets an
  # artifact of its own, on its task run's page.
  recommendation @37 :Recommendation;
  startTimeNs @38 :Int64;
  # Wall clock at task start (the caller's), nanoseconds since the epoch.
  taskKey @39 :Text;
  # Prefect's task key (stable per task function), when the plugin knows it.
  unobservedNs @40 :UInt64;
  # How long the task ran before its registration reached the sidecar (start
  # is one-way: some 0.1 ms normally; more from a busy or stopped sidecar). Its
  # own CPU and I/O counters are exact regardless (TaskRunInfo.baseline); what
  # only the kernel observer sees as it happens is listed in `unknown` where
  # the task did it meanwhile: socket bytes if it used a socket, off-CPU
  # causes if it slept or blocked, and its descendants if it started a thread
  # or process (docs/observer.md, "Late registrations").
  unknownWhy @41 :List(Text);
  # Why the fields in `unknown` are unknown: one line per cause (the collector,
  # a late registration, descendants the collector could not follow).

  thread :group {
    # How the task's thread was shared (docs/observer.md, "Tasks that share a thread").
    nestedTasks @42 :UInt32;
    # Tasks called inside this one on its thread, transitively.
    nestedCpuNs @43 :UInt64;
    # Their CPU: their own reports count it, this one's cpu does not.
    sharedWith @44 :UInt32;
    # Other tasks that ran on its thread while it ran, not nested in it (async
    # tasks of one event loop): then what its thread did cannot be told
    # apart, and every field that counts it is in `unknown`.
  }

  cost :group {
    # What the run's execution window cost at its policy's prices
    # (docs/policies.md, "Cost"). A task shares its flow run's allocation with
    # the tasks beside it, so its `allocated` is that allocation over its own
    # wall time, and tasks' costs do not add up to their flow run's: the flow
    # run's is its footprint's (task `(flow run)`), what its processes used
    # together over the run. Unknown (null) when no policy applies or what it
    # used is not known.
    allocated @59 :Float64;
    # allocation.cpuCores and allocation.memoryBytes held for wallNs.
    used @60 :Float64;
    # Its CPU time (cpu.userNs + cpu.systemNs), and its peak memory held for
    # wallNs: a limit has to hold the peak, so memory under it is not spare.
    waste @61 :Float64;
    # What was allocated and not used, CPU and memory each at least 0.
    cpuCoreHour @62 :Float64;
    memoryGibHour @63 :Float64;
    currency @64 :Text;
    # The prices that applied: the policy's, or those it sets for the run's work pool.
    priceSource @69 :Text;
    # Where they come from (the policy's cost.source).
  }

  profile @65 :Text;
  # What bounds the run, from its time and resources (docs/policies.md,
  # "Placement"): compute, memory, disk, external, idle or balanced; empty
  # when no policy applies, on a flow run's footprint, or when what it rests
  # on was not measured and no measured bound settles it.

  placement :group {
    # Set on a flow run's footprint when its tasks belong on different work
    # pools (the `separate_tasks` finding): each group and what it needs.
    groups @66 :List(TaskGroup);
    neededGibPerCore @67 :Float64;
    # The shape the deployment's recommendation has (memory GiB per core),
    # against the one its allocation has: an instance family's shape. 0: not
    # known (the recommendation not ready; the allocation not known).
    allocatedGibPerCore @68 :Float64;
  }
}

struct TaskGroup {
  # Tasks of one flow run that belong on one kind of work pool (docs/policies.md, "Placement").
  kind @0 :Text;
  # "heavy" (compute, memory or disk bound) or "light" (waiting on external systems, or
  # idle); when a flow run is split by shape, "compute" or "memory".
  tasks @1 :List(Text);
  profiles @2 :List(Text);
  # Each task's profile, parallel to tasks; "compute+disk" when its runs in
  # the group had several.
  cpuCores @3 :Float64;
  memoryBytes @4 :UInt64;
  # What the group's tasks need at once, with the policy's headroom and rounding.
  jobVariables @5 :Text;
  # The prefect.yaml snippet for that work pool, in the deployment's work pool type.
}

struct TaskRow {
  # A finished task run's record: the one definition of a row of a flow run's
  # table artifact in Prefect and of a row of the history (store/history.db),
  # made from its TaskReport in one place (sidecar/report/task_row) and read
  # back by the history and by another node's sidecar seeding its history
  # from Prefect (prefect/history_seeder). JSON: snake_case (cpu_s); the
  # fields `unknown` names are null. Seconds keep microseconds.
  task @0 :Text;
  taskKey @1 :Text;
  taskRunId @2 :Text;
  state @3 :Text;
  wallS @4 :Float64;
  cpuS @5 :Float64;
  avgCores @6 :Float64;
  p95Cores @7 :Float64;
  peakRssBytes @8 :UInt64;
  oomKills @9 :UInt32;
  readBytes @10 :UInt64;
  writeBytes @11 :UInt64;
  txBytes @12 :UInt64;
  rxBytes @13 :UInt64;
  unobservedS @14 :Float64;
  # Microseconds count: a registration 0.3 ms late is not 0.000 s late.
  allocatedCores @15 :Float64;
  allocatedBytes @16 :UInt64;
  policy @17 :Text;
  topFinding @18 :Text;
  unknown @19 :List(Text);
  # This row's fields (cpu_s, peak_rss_bytes, ...) that were not measured.
  nestedCpuS @20 :Float64;
  # CPU of the tasks called inside this one (their own rows have it; cpu_s does not).
  sharedWith @21 :UInt32;
  # Other tasks that ran on its thread at the same time (TaskReport.thread.sharedWith).
  maxCores @22 :Float64;
  runqueueWaitS @23 :Float64;
  # Waiting for a CPU (TaskReport.sched).
  blockedIoS @24 :Float64;
  sleepS @25 :Float64;
  shortLived @26 :UInt64;
  # Processes that lived under a second (TaskReport.proc.shortLived).
  networkWaitS @27 :Float64;
  # sleepS by cause (TaskReport.sched.sleepByCause); the rest of it is other.
  lockWaitS @28 :Float64;
  childWaitS @29 :Float64;
  timerS @30 :Float64;
  pipeWaitS @31 :Float64;
  sharedProcess @32 :Bool;
  # A thread of a process other tasks share (TaskReport.memory.sharedProcess).
  topEndpoint @33 :Text;
  # "address:port" the task waited on longest (TaskReport.net.endpoints), "" if none.
  topEndpointWaitS @34 :Float64;
  costAllocated @35 :Float64;
  costUsed @36 :Float64;
  costWaste @37 :Float64;
  # TaskReport.cost, in `currency`.
  currency @38 :Text;
  profile @39 :Text;
  # TaskReport.profile.
}

struct Finding {
  kind @0 :Text;
  # cpu_over_allocation, memory_over_allocation, memory_pressure, io_bound,
  # external_wait, lock_wait, gil_contention, cpu_contention, idle, subprocess_churn,
  # slower_than_usual, separate_tasks
  severity @1 :Text;
  # info, warning, critical
  summary @2 :Text;
  evidence @3 :List(Evidence);
  policy @4 :Text;
}

struct Evidence {
  name @0 :Text;
  value @1 :Text;
}

struct Recommendation {
  # From this task's history (keyed by deployment, or flow, and task).
  ready @0 :Bool;
  # False until history.min_runs runs are known.
  runs @1 :UInt32;
  minRuns @2 :UInt32;
  confidence @3 :Float64;
  spanHours @4 :Float64;
  cpuCores @5 :Float64;
  memoryBytes @6 :UInt64;
  oomSeen @7 :Bool;
  wastedCostPerRun @8 :Float64;
  jobVariables @9 :Text;
  # The prefect.yaml snippet for the run's work pool type.
  runsPerMonth @10 :Float64;
  # The observed run rate (runs - 1 over their span, per 730 h); 0 when not
  # known (fewer than two runs, or all at one moment). wastedCostPerRun times
  # this is what the recommendation would save per month.
  recentUsedCost @11 :Float64;
  recentAllocatedCost @12 :Float64;
  # What the `runs` runs used and had allocated, at the prices that apply now
  # (TaskReport.cost).
}

struct TaskRecommendation {
  key @0 :Text;
  # "deployment:<id>", or "flow:<name>" for runs without a deployment id.
  task @1 :Text;
  policy @2 :Text;
  recommendation @3 :Recommendation;
  flow @4 :Text;
  deployment @5 :Text;
  # The flow's and the deployment's names in the task's latest run, for people.
}

struct Endpoint {
  # The far end of a task's IP sockets: a peer, or a listening socket's own address.
  address @0 :Text;
  # "10.0.3.7", "2001:db8::1" (an IPv4-mapped IPv6 address as IPv4).
  port @1 :UInt16;
  listening @2 :Bool;
  # The task accepted connections here: address:port is its own.
  waitNs @3 :UInt64;
  # Asleep on a socket to it: reading, writing, connecting, or a poll, select
  # or epoll wait whose first IP socket it was (part of sleepByCause.networkNs).
  txBytes @4 :UInt64;
  rxBytes @5 :UInt64;
  connections @6 :UInt32;
  # TCP connects to it.
}

struct ProcessCpu {
  comm @0 :Text;
  count @1 :UInt32;
  cpuNs @2 :UInt64;
}

struct SidecarStatus {
  version @0 :Text;
  uptimeNs @1 :UInt64;
  collector @2 :Text;
  collectorNote @3 :Text;
  # Why the collector is degraded, empty when all is well.
  connectedClients @4 :UInt32;
  liveFlowRuns @5 :UInt32;
  liveTasks @6 :UInt32;
  finishedFlowRuns @7 :UInt64;
  crashedFlowRuns @8 :UInt64;
  finishedTasks @9 :UInt64;
  crashedTasks @10 :UInt64;
  eventsLost @11 :UInt64;
  policies @12 :Text;
  # Where the policy set came from and how many policies it has.
  policyReloadError @13 :Text;
  # Why the last reload was refused (the previous set stayed); empty if it worked.
  lateTasks @14 :UInt64;
  # Tasks that, before their registration reached the sidecar, did something
  # only the kernel observer sees as it happens (fields of theirs unknown).
  sharedThreadTasks @15 :UInt64;
  # Tasks that shared their thread with tasks not nested in them (async tasks
  # of one event loop): the fields that count their thread are unknown.
  historyWriteFailures @16 :UInt64;
  # History writes that failed (a full disk) since the start, each rolled back whole.
  historyRunsHeld @17 :UInt64;
  # Finished runs held in memory until the history can write them.
  historyRunsDropped @18 :UInt64;
  # Runs dropped unwritten, held past the in-memory cap while writes failed.
  outboxWriteFailures @19 :UInt64;
  # Artifacts the outbox could not store when tried (a full disk) since the start.
  artifactsHeld @20 :UInt64;
  # Artifacts held in memory until the outbox can store them.
  artifactsDropped @21 :UInt64;
  # Artifacts dropped unstored, held past the in-memory cap.
  deliveryRestarts @22 :UInt64;
  # Times artifact delivery stopped on an error and was restarted.
}

struct LiveTask {
  taskRunId @0 :Text;
  taskName @1 :Text;
  flowRunId @2 :Text;
  flowName @3 :Text;
  hostTid @4 :Int32;
  callerPid @5 :Int32;
  callerUid @6 :UInt32;
  runningNs @7 :UInt64;
  cores @8 :Float64;
  # Cores busy over its last sampling window (a second, or wider on a long task).
  rssBytes @9 :UInt64;
  # Resident memory of its processes at the last sample.
  waitingOn @10 :Text;
  # What its registered thread waits on now: network, lock, child, timer,
  # pipe, other (asleep), disk (blocked); empty while it runs or waits for a
  # CPU; unknown without the kernel observer.
  waitingNs @11 :UInt64;
  # For how long.
  waitingOnEndpoint @12 :Endpoint;
  # Waiting on the network: the endpoint of the socket (of a wait set, its
  # first IP socket's); unset otherwise (its address empty).
}

interface Sidecar {
  openFlowRun @0 (run :FlowRunInfo) -> (scope :FlowRunScope);
  status @1 () -> (status :SidecarStatus);
  admin @2 () -> (admin :Admin);
  # Refused unless the caller is root.
}

interface FlowRunScope {
  startTask @0 (task :TaskRunInfo, key :UInt64) -> ();
  # Registers task.tid as the task `key` of this scope; refused unless the
  # thread belongs to the caller's own process, or to a process of the caller's
  # uid, or the caller is root, and when `key` is already a live task here. The
  # caller is the one that opened (or joined) this scope, whoever opened the run.
  finish @1 (state :RunState) -> ();
  # A joined scope (FlowRunInfo.joinRunningFlowRun) ignores the state. The
  # opener's is answered once the run's artifacts are in the sidecar's outbox.
  finishTask @2 (key :UInt64, state :RunState, reportWanted :Bool, end :ThreadBaseline)
      -> (report :TaskReport);
  # Ends the live task `key` of this scope; refused for a key that is not one.
  # The report is in the answer only when wanted (the plugin does not read it).
  # `end`: the thread's counters as the task ended, read on that thread by the
  # client library (a task started with a baseline, finished on its thread):
  # finish is one-way, and the thread runs on until it reaches the sidecar.
}

interface Admin {
  liveTasks @0 () -> (tasks :List(LiveTask));
  recentReports @1 (limit :UInt32) -> (reports :List(TaskReport));
  # Finished tasks, newest first; reports of tasks whose processes outlived
  # them are updated until those exit.
  reloadPolicies @2 () -> (ok :Bool, errors :List(Text));
  # Reloads the policy directory; on errors the current set stays.
  recommendations @3 (flow :Text) -> (recommendations :List(TaskRecommendation));
  # One per task in the history (flow: RE2 on the flow name, empty = all).
  artifacts @4 (retryParked :Bool) -> (artifacts :List(OutboxItem));
  # The artifact outbox, newest first; retryParked puts parked items back in line.
  costs @5 (by :Text, sinceNs :UInt64, nowNs :Int64) -> (costs :CostReport);
  # What the runs in the history cost over the last sinceNs (0: 7 days) up to
  # nowNs (0: the sidecar's clock), against the window before it
  # (docs/policies.md, "Costs over time"). by: deployment (empty), flow or task.
}

struct CostReport {
  # The cost of the runs that finished in a window, from the history, by
  # deployment, flow or task (tracerctl costs).
  by @0 :Text;
  # deployment, flow or task.
  windowStartNs @1 :Int64;
  windowEndNs @2 :Int64;
  # Runs that finished after the start and at or before the end (wall clock,
  # ns since the epoch). The previous window is as long and ends at the start.
  rows @3 :List(CostRow);
  notes @4 :List(Text);
  # What the rows mean together, e.g. that tasks' costs overlap.
  rowsNotListed @5 :UInt32;
  # Rows past the most an answer lists (the ones that used most are listed):
  # a sum of the listed rows is then not the whole.
}

struct CostRow {
  # One deployment, flow or task in one currency: costs in different
  # currencies are never added. Runs without a cost are counted, not summed.
  deployment @0 :Text;
  flow @1 :Text;
  # The names in its latest run, for people; no deployment: runs of the flow
  # without one (or, by flow, all of the flow's).
  key @2 :Text;
  # The history key, "deployment:<id>" or "flow:<name>"; empty by flow.
  task @3 :Text;
  # By task: the task (its key, or its name without one); empty otherwise.
  currency @4 :Text;
  # Empty on a row of unpriced runs only.
  runs @5 :UInt32;
  # Runs in the window with a cost: what used, allocated and waste add up.
  used @6 :Float64;
  allocated @7 :Float64;
  waste @8 :Float64;
  # TaskRow.costUsed, costAllocated and costWaste summed over those runs.
  previousRuns @9 :UInt32;
  previousUsed @10 :Float64;
  # The same of the previous window.
  trend @11 :Float64;
  # used / previousUsed - 1 (0.12: 12 % more). Unknown when either window is
  # partial or has unpriced runs, or the previous one has no cost.
  partial @12 :Bool;
  # Runs of the window are missing from the history: the sums are less than
  # what the window cost.
  partialWhy @13 :List(Text);
  # One line per cause: runs past the history's retention, flow runs without
  # a footprint.
  unpricedRuns @14 :UInt32;
  # Runs in the window without a cost (the policy has no prices, what they
  # used is unknown, or an earlier version recorded them): left out of the sums.
  unknown @15 :List(Text);
  # Fields not known (JSON null): "trend".
  unknownWhy @16 :List(Text);
  # Why, one line per cause.
}

struct OutboxItem {
  id @0 :Int64;
  key @1 :Text;
  type @2 :Text;
  flowRunId @3 :Text;
  status @4 :Text;
  # local (no PREFECT_API_URL), pending, delivered or parked
  attempts @5 :UInt32;
  lastError @6 :Text;
  createdAtNs @7 :Int64;
  body @8 :Text;
  # The ArtifactCreate JSON, as posted.
  bodyOmitted @9 :Bool;
  # The body is left out (empty): with it the answer would pass its size
  # budget (an RPC message is at most 512 KiB). It is in STATE_DIR/outbox.db.
}
