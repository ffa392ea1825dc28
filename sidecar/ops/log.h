#pragma once
// Logging for the sidecar: journald (structured) when systemd connected our
// stderr to the journal, plain stderr lines otherwise. A line about a run
// carries its ids: journal fields FLOW_RUN_ID and TASK_RUN_ID (so
// `journalctl FLOW_RUN_ID=...` finds everything about one flow run), or
// flow_run_id=... task_run_id=... at the end of a stderr line. It is also the
// kj::ExceptionCallback for the thread that owns it, so KJ_LOG messages from
// KJ and Cap'n Proto (dropped connections, RPC errors) land in the same place.

#include <kj/debug.h>
#include <kj/exception.h>
#include <kj/string.h>

namespace tracer {

enum class Level { ERROR, WARNING, INFO, DEBUG };

// Which run a log line is about; empty ids are left out.
struct RunIds {
  kj::StringPtr flowRunId;
  kj::StringPtr taskRunId;
};

class Log final: public kj::ExceptionCallback {
 public:
  explicit Log(bool verbose);

  void error(kj::StringPtr message, RunIds run = {}) { write(Level::ERROR, message, run); }
  void warn(kj::StringPtr message, RunIds run = {}) { write(Level::WARNING, message, run); }
  void info(kj::StringPtr message, RunIds run = {}) { write(Level::INFO, message, run); }
  void debug(kj::StringPtr message, RunIds run = {}) {
    if (verbose) write(Level::DEBUG, message, run);
  }

  void logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                  kj::String&& text) override;

 private:
  void write(Level level, kj::StringPtr message, RunIds run = {});

  bool toJournal;
  bool verbose;
};

}  // namespace tracer
