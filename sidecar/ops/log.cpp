#include "ops/log.h"

#include <systemd/sd-journal.h>
#include <syslog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <kj/vector.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace tracer {

namespace {

int syslogPriority(Level level) {
  switch (level) {
    case Level::ERROR: return LOG_ERR;
    case Level::WARNING: return LOG_WARNING;
    case Level::INFO: return LOG_INFO;
    case Level::DEBUG: return LOG_DEBUG;
  }
  return LOG_INFO;
}

const char* levelName(Level level) {
  switch (level) {
    case Level::ERROR: return "error";
    case Level::WARNING: return "warning";
    case Level::INFO: return "info";
    case Level::DEBUG: return "debug";
  }
  return "info";
}

}  // namespace

// systemd sets JOURNAL_STREAM when stderr is connected to the journal; that is
// the documented way to tell "run by systemd" from "run in a terminal or test".
Log::Log(bool verbose): toJournal(getenv("JOURNAL_STREAM") != nullptr), verbose(verbose) {}

void Log::write(Level level, kj::StringPtr message, RunIds run) {
  if (toJournal) {
    kj::Vector<kj::String> fields;
    fields.add(kj::str("MESSAGE=", message));
    fields.add(kj::str("PRIORITY=", syslogPriority(level)));
    fields.add(kj::str("SYSLOG_IDENTIFIER=tracer-sidecar"));
    if (run.flowRunId.size() > 0) fields.add(kj::str("FLOW_RUN_ID=", run.flowRunId));
    if (run.taskRunId.size() > 0) fields.add(kj::str("TASK_RUN_ID=", run.taskRunId));
    kj::Vector<iovec> parts;
    for (auto& field: fields) parts.add(iovec{field.begin(), field.size()});
    sd_journal_sendv(parts.begin(), parts.size());
    return;
  }
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc;
  gmtime_r(&now.tv_sec, &utc);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  auto ids = kj::str(run.flowRunId.size() > 0 ? kj::str(" flow_run_id=", run.flowRunId) : kj::str(),
                    run.taskRunId.size() > 0 ? kj::str(" task_run_id=", run.taskRunId) : kj::str());
  fprintf(stderr, "%s.%03ldZ %s %s%s\n", stamp, now.tv_nsec / 1000000, levelName(level),
          message.cStr(), ids.cStr());
  fflush(stderr);
}

void Log::logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                     kj::String&& text) {
  Level level = severity == kj::LogSeverity::ERROR || severity == kj::LogSeverity::FATAL
      ? Level::ERROR
      : severity == kj::LogSeverity::WARNING ? Level::WARNING : Level::INFO;
  write(level, kj::str(text, " (", file, ":", line, ")"));
}

}  // namespace tracer
