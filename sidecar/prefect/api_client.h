#pragma once
// The Prefect REST API as Tracer uses it: JSON POSTs over kj::HttpClient on the
// sidecar's event loop, https through kj-tls with the system trust store.
// Each request gets its own connection: requests are few (artifacts per flow
// run), and a pooled keep-alive connection the server has meanwhile closed
// (HTTP/1.0 servers, idle timeouts, proxies) would fail the next request.
// Credentials (docs/prefect.md, "Delivery"): PREFECT_API_AUTH_STRING -> Basic (takes
// precedence, self-hosted), else PREFECT_API_KEY (or the file named by
// PREFECT_API_KEY_FILE) -> Bearer (Prefect Cloud). They are never logged.

#include <kj/async-io.h>
#include <kj/compat/http.h>
#include <kj/compat/tls.h>

namespace tracer {

struct PrefectApiSettings {
  kj::String url;                          // e.g. http://127.0.0.1:4200/api (no trailing slash)
  kj::Maybe<kj::String> authorization;     // the Authorization header's value
  kj::String describe() const;             // for logs: the URL and the kind of auth only
};

// From --prefect-api-url (when given) and the environment; nothing when no
// URL is set, or when what is set is unusable: then `error` says which
// setting and what is wrong, in one line.
kj::Maybe<kj::Own<PrefectApiSettings>> prefectApiFromEnvironment(kj::StringPtr urlFlag,
                                                                 kj::String& error);

struct ApiResponse {
  unsigned statusCode;
  kj::String body;
  kj::Maybe<uint64_t> retryAfterSeconds;
};

// What delivery and history seeding need of Prefect's API: tests give them
// a fake that answers what they are testing.
class PrefectApi {
 public:
  virtual ~PrefectApi() noexcept(false) = default;
  // POST `json` to `path` (relative to the API URL). Network failures and the
  // timeout reject the promise; HTTP errors resolve it with their status.
  virtual kj::Promise<ApiResponse> post(kj::StringPtr path, kj::String json) = 0;
  // PATCH, likewise (an artifact updated in place).
  virtual kj::Promise<ApiResponse> patch(kj::StringPtr path, kj::String json) = 0;
};

class PrefectApiClient final: public PrefectApi {
 public:
  PrefectApiClient(kj::AsyncIoContext& io, PrefectApiSettings settings);

  kj::Promise<ApiResponse> post(kj::StringPtr path, kj::String json) override;
  kj::Promise<ApiResponse> patch(kj::StringPtr path, kj::String json) override;

  const PrefectApiSettings& settings() const { return api; }

 private:
  kj::Promise<ApiResponse> send(kj::HttpMethod method, kj::StringPtr path, kj::String json);

  PrefectApiSettings api;
  kj::Timer& timer;
  kj::HttpHeaderTable::Builder headerBuilder;
  kj::HttpHeaderId authorizationHeader;
  kj::HttpHeaderId apiVersionHeader;
  kj::HttpHeaderId retryAfterHeader;
  kj::Own<kj::HttpHeaderTable> headerTable;
  kj::TlsContext tls;
  kj::Network& network;
  kj::Own<kj::Network> tlsNetwork;
};

}  // namespace tracer
