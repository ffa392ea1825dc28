#pragma once
// Logging for the sidecar: journald (structured) when systemd connected our
// stderr to the journal, plain stderr lines otherwise. It is also the
// kj::ExceptionCallback for the thread that owns it, so KJ_LOG messages from
// KJ and Cap'n Proto (dropped connections, RPC errors) land in the same place.

#include <kj/debug.h>
#include <kj/exception.h>
#include <kj/string.h>

namespace tracer {

enum class Level { ERROR, WARNING, INFO, DEBUG };

class Log final: public kj::ExceptionCallback {
 public:
  explicit Log(bool verbose);

  void error(kj::StringPtr message) { write(Level::ERROR, message); }
  void warn(kj::StringPtr message) { write(Level::WARNING, message); }
  void info(kj::StringPtr message) { write(Level::INFO, message); }
  void debug(kj::StringPtr message) { if (verbose) write(Level::DEBUG, message); }

  void logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                  kj::String&& text) override;

 private:
  void write(Level level, kj::StringPtr message);

  bool toJournal;
  bool verbose;
};

}  // namespace tracer
