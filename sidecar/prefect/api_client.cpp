#include "prefect/api_client.h"

#include <kj/debug.h>
#include <kj/encoding.h>
#include <kj/io.h>
#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tracer {

namespace {

constexpr kj::Duration REQUEST_TIMEOUT = 15 * kj::SECONDS;
// The API version Prefect 3.x clients send (prefect/server/api/server.py, API_VERSION).
constexpr const char* PREFECT_API_VERSION = "0.8.4";

kj::Maybe<kj::String> environment(const char* name) {
  const char* value = getenv(name);
  if (value == nullptr || *value == '\0') return nullptr;
  return kj::str(value);
}

kj::String trimmed(kj::StringPtr text) {
  size_t end = text.size();
  while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' ')) --end;
  return kj::str(text.slice(0, end));
}

}  // namespace

kj::String PrefectApiSettings::describe() const {
  kj::StringPtr auth = "no credentials";
  KJ_IF_MAYBE(value, authorization) {
    auth = value->startsWith("Basic ") ? "basic auth" : "an API key";
  }
  return kj::str(url, " (", auth, ")");
}

kj::Maybe<kj::Own<PrefectApiSettings>> prefectApiFromEnvironment(kj::StringPtr urlFlag,
                                                                 kj::String& error) {
  kj::Maybe<kj::String> url = urlFlag.size() ? kj::str(urlFlag) : environment("PREFECT_API_URL");
  KJ_IF_MAYBE(u, url) {
    kj::StringPtr setting = urlFlag.size() ? "--prefect-api-url" : "PREFECT_API_URL";
    auto rest = u->startsWith("https://") ? u->slice(8) : u->startsWith("http://") ? u->slice(7)
                                                                                 : nullptr;
    if (rest == nullptr || rest.size() == 0 || rest[0] == '/' || rest[0] == ':') {
      error = kj::str(setting, ": '", *u, "' is not an http:// or https:// URL with a host "
                      "(e.g. http://127.0.0.1:4200/api)");
      return nullptr;
    }
    auto result = kj::heap<PrefectApiSettings>();
    auto& settings = *result;
    settings.url = u->endsWith("/") ? kj::str(u->slice(0, u->size() - 1)) : kj::mv(*u);
    KJ_IF_MAYBE(auth, environment("PREFECT_API_AUTH_STRING")) {
      settings.authorization = kj::str("Basic ", kj::encodeBase64(auth->asBytes()));
    } else KJ_IF_MAYBE(key, environment("PREFECT_API_KEY")) {
      settings.authorization = kj::str("Bearer ", *key);
    } else KJ_IF_MAYBE(path, environment("PREFECT_API_KEY_FILE")) {
      kj::String key;
      int fd = open(path->cStr(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        error = kj::str("PREFECT_API_KEY_FILE=", *path, ": cannot open it: ", strerror(errno));
        return nullptr;
      }
      KJ_IF_MAYBE(e, kj::runCatchingExceptions(
                         [&]() { key = kj::FdInputStream(kj::AutoCloseFd(fd)).readAllText(); })) {
        error = kj::str("PREFECT_API_KEY_FILE=", *path, ": cannot read it: ",
                        e->getDescription());
        return nullptr;
      }
      if (trimmed(key).size() == 0) {
        error = kj::str("PREFECT_API_KEY_FILE=", *path, ": the file is empty");
        return nullptr;
      }
      settings.authorization = kj::str("Bearer ", trimmed(key));
    }
    return kj::mv(result);
  }
  return nullptr;
}

PrefectApiClient::PrefectApiClient(kj::AsyncIoContext& io, PrefectApiSettings settings)
    : api(kj::mv(settings)),
      timer(io.provider->getTimer()),
      authorizationHeader(headerBuilder.add("Authorization")),
      apiVersionHeader(headerBuilder.add("X-PREFECT-API-VERSION")),
      retryAfterHeader(headerBuilder.add("Retry-After")),
      headerTable(headerBuilder.build()),
      network(io.provider->getNetwork()),
      tlsNetwork(tls.wrapNetwork(network)) {}

kj::Promise<ApiResponse> PrefectApiClient::post(kj::StringPtr path, kj::String json) {
  return send(kj::HttpMethod::POST, path, kj::mv(json));
}

kj::Promise<ApiResponse> PrefectApiClient::patch(kj::StringPtr path, kj::String json) {
  return send(kj::HttpMethod::PATCH, path, kj::mv(json));
}

kj::Promise<ApiResponse> PrefectApiClient::send(kj::HttpMethod method, kj::StringPtr path,
                                                kj::String json) {
  kj::HttpHeaders headers(*headerTable);
  headers.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json");
  headers.set(apiVersionHeader, PREFECT_API_VERSION);
  KJ_IF_MAYBE(auth, api.authorization) { headers.set(authorizationHeader, *auth); }
  auto url = kj::str(api.url, path);
  auto http = kj::newHttpClient(timer, *headerTable, network, *tlsNetwork);
  auto request = http->request(method, url, headers, json.size());
  auto sent = request.body->write(json.begin(), json.size()).attach(kj::mv(request.body), kj::mv(json));
  auto answered = request.response.then([this](kj::HttpClient::Response&& response) {
    kj::Maybe<uint64_t> retryAfter;
    KJ_IF_MAYBE(value, response.headers->get(retryAfterHeader)) {
      char* end;
      uint64_t seconds = strtoull(value->cStr(), &end, 10);
      if (*end == '\0' && end != value->cStr()) retryAfter = seconds;
    }
    unsigned status = response.statusCode;
    return response.body->readAllText().attach(kj::mv(response.body))
        .then([status, retryAfter](kj::String body) {
          return ApiResponse{status, kj::mv(body), retryAfter};
        });
  });
  return timer.timeoutAfter(REQUEST_TIMEOUT, sent.then([answered = kj::mv(answered)]() mutable {
    return kj::mv(answered);
  })).attach(kj::mv(http));
}

}  // namespace tracer
