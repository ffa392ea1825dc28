/* libtracer_client: the C ABI through which the Prefect plugin (through its
 * binding, prefect-plugin/native/) and tracerctl talk to tracer-sidecar.
 *
 * Fail-open by construction: every call returns quickly whatever the sidecar
 * does. The library connects (and reconnects, with backoff) on its own
 * background thread; calls on a task's path wait at most the time they are
 * given. Errors are never raised: a NULL / negative result plus
 * tracer_last_error() for the calling thread. Safe across fork(): a child
 * process opens its own connection on first use.
 *
 * Info arguments are JSON objects with the contract's snake_case keys
 * (capnp/tracer.capnp: FlowRunInfo, TaskRunInfo). States are "completed",
 * "failed", "cancelled" or "crashed". Returned strings are freed with
 * tracer_free(). */
#ifndef TRACER_CLIENT_H
#define TRACER_CLIENT_H

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef struct tracer_client tracer_client;
typedef struct tracer_flow tracer_flow;
typedef struct tracer_task tracer_task;
typedef struct tracer_report tracer_report;

/* NULL socket_path: $TRACER_SOCKET, else /run/tracer/tracer.sock. Never NULL. */
tracer_client* tracer_client_open(const char* socket_path);
void tracer_client_close(tracer_client* client);

/* 1 once connected (waiting up to timeout_ms), else 0. */
int tracer_client_wait_connected(tracer_client* client, int timeout_ms);

/* SidecarStatus as JSON, or NULL (at once when the sidecar has not answered
 * the last 64 status and Admin calls). */
char* tracer_client_status(tracer_client* client, int timeout_ms);
/* Calls the sidecar's Admin method `method` by its contract name (capnp/tracer.capnp,
 * snake_case: "live_tasks", "recent_reports", "reload_policies", "recommendations",
 * "artifacts"), with `params_json` (an object of its params; NULL or "" for none).
 * Returns its results as JSON, or NULL (root only; an unknown method or param
 * says so in tracer_last_error()). */
char* tracer_client_admin(tracer_client* client, const char* method, const char* params_json,
                          int timeout_ms);

/* Opens a flow run (does not wait). NULL only when info_json is invalid. */
tracer_flow* tracer_flow_open(tracer_client* client, const char* info_json);
/* Finishes the flow run and frees the handle. 0 when the sidecar confirmed it
 * (which it does once the run's artifacts are in its outbox), 1 when that did
 * not come within timeout_ms (the finish is on its way), -1 when it failed.
 * While the sidecar has not answered 256 flow runs' opens, a flow run is not
 * announced as it opens but by its first task's start or with its finish,
 * and one never announced is dropped and counted (tracer_client_dropped). */
int tracer_flow_finish(tracer_flow* flow, const char* state, int timeout_ms);

/* Starts a task attributed to thread `tid` (0: info_json's "tid", else the calling
 * thread by gettid()). One-way with wait_ms 0: the calling thread's counters are
 * read here, so a registration that reaches the sidecar a moment later loses
 * none of them; wait_ms > 0 also waits that long for the sidecar to confirm.
 * NULL when flow or info_json is NULL, or when the sidecar has not answered
 * the last 1,024 starts (the start is dropped and counted:
 * tracer_client_dropped). Invalid JSON fails the registration on the
 * library's thread: tracer_task_status() says -1 and tracer_last_error() why. */
tracer_task* tracer_task_start(tracer_flow* flow, const char* info_json, int tid, int wait_ms);
/* 1: the sidecar registered the task; 0: no answer yet; -1: refused or unreachable. */
int tracer_task_status(tracer_task* task);
/* Finishes the task without waiting and frees the handle. Called on the thread
 * whose counters its start read, it reads them again and sends them: the task
 * ends there, however late the finish reaches the sidecar. With `report` non-NULL,
 * *report receives a handle to wait on for the TaskReport (tracer_report_wait,
 * then tracer_report_free); with NULL the sidecar sends none. 0 when sent, -1
 * when not (never registered, another process's task). */
int tracer_task_finish(tracer_task* task, const char* state, tracer_report** report);
/* The TaskReport JSON, waiting up to timeout_ms for it; NULL on timeout or failure. */
char* tracer_report_wait(tracer_report* report, int timeout_ms);
void tracer_report_free(tracer_report* report);
/* Task starts and flow runs this process dropped because the sidecar had not
 * answered earlier ones. */
unsigned long long tracer_client_dropped(tracer_client* client);

/* The calling thread's last error message ("" if none). */
const char* tracer_last_error(void);
void tracer_free(char* text);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
