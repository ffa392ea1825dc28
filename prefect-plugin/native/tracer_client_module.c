/* prefect_tracer._tracer_client: the C ABI of libtracer_client.so
 * (client/tracer_client.h) as a CPython extension, for the plugin.
 *
 * Why not ctypes: a task's start and finish are on every Prefect task's path,
 * where ctypes' calls (libffi, argument conversion, a GIL release each) and
 * json.dumps() cost several microseconds on a cold cache (docs/performance.md,
 * tests/bench/python_bench.py). The functions keep the C names and argument
 * order; what differs is Pythonic:
 *   - handles are ints, NULL is None;
 *   - strings are taken as str or bytes, and returned as str (copied and
 *     freed here), NULL as None;
 *   - an info argument may also be a dict of str, numbers, bool, None and
 *     lists of str, which is written as JSON here;
 *   - tracer_task_finish(task, state, want_report) returns -1 when the finish
 *     was not sent, else the report's handle (0 when none was asked for).
 * Calls that may wait (for a connection, an answer, a thread) release the
 * GIL; the others return in microseconds and keep it.
 *
 * The stable ABI (Python >= 3.10), so one build serves every Python the
 * plugin supports. */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracer_client.h"

/* Argument readers: each returns 0 and sets a Python error on a bad type. */
static int arguments(Py_ssize_t given, Py_ssize_t wanted, const char* function) {
  if (given == wanted) return 1;
  PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", function, wanted, given);
  return 0;
}

static int handle(PyObject* value, void** out) {
  if (value == Py_None) {
    *out = NULL;
    return 1;
  }
  *out = PyLong_AsVoidPtr(value);
  return !PyErr_Occurred();
}

static int text(PyObject* value, const char** out) {
  if (value == Py_None) {
    *out = NULL;
  } else if (PyBytes_Check(value)) {
    *out = PyBytes_AsString(value);
  } else {
    *out = PyUnicode_AsUTF8AndSize(value, NULL);
  }
  return value == Py_None || *out != NULL;
}

static int number(PyObject* value, int* out) {
  long n = PyLong_AsLong(value);
  *out = (int)n;
  return !(n == -1 && PyErr_Occurred());
}

/* JSON text being written: grows as needed; `failed` once out of memory. */
typedef struct {
  char* bytes;
  size_t size, capacity;
  int failed;
} Json;

static void put(Json* json, const char* bytes, size_t size) {
  if (json->failed) return;
  size_t needed = json->size + size + 1;
  if (needed > json->capacity) {
    // Most infos fit in the first 512 bytes: one allocation.
    size_t capacity = needed < 512 ? 512 : needed * 2;
    char* grown = PyMem_Realloc(json->bytes, capacity);
    if (grown == NULL) {
      json->failed = 1;
      return;
    }
    json->bytes = grown;
    json->capacity = capacity;
  }
  memcpy(json->bytes + json->size, bytes, size);
  json->size += size;
  json->bytes[json->size] = '\0';
}

static int putString(Json* json, PyObject* value) {
  Py_ssize_t size;
  const char* utf8 = PyUnicode_AsUTF8AndSize(value, &size);
  if (utf8 == NULL) return 0;
  put(json, "\"", 1);
  Py_ssize_t plain = 0;  // the start of the run of bytes that need no escape
  for (Py_ssize_t i = 0; i < size; i++) {
    unsigned char c = (unsigned char)utf8[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(json, utf8 + plain, (size_t)(i - plain));
    char escaped[8];
    snprintf(escaped, sizeof escaped, c == '"' || c == '\\' ? "\\%c" : "\\u%04x", c);
    put(json, escaped, strlen(escaped));
    plain = i + 1;
  }
  put(json, utf8 + plain, (size_t)(size - plain));
  put(json, "\"", 1);
  return 1;
}

static int putValue(Json* json, PyObject* value) {
  if (PyUnicode_Check(value)) return putString(json, value);
  if (value == Py_None) {
    put(json, "null", 4);
  } else if (PyBool_Check(value)) {
    value == Py_True ? put(json, "true", 4) : put(json, "false", 5);
  } else if (PyLong_Check(value)) {
    long long n = PyLong_AsLongLong(value);
    if (n == -1 && PyErr_Occurred()) return 0;
    char digits[24];
    put(json, digits, (size_t)snprintf(digits, sizeof digits, "%lld", n));
  } else if (PyFloat_Check(value)) {
    double x = PyFloat_AsDouble(value);
    if (!isfinite(x)) {
      PyErr_Format(PyExc_ValueError, "an info number is finite, not %R", value);
      return 0;
    }
    char digits[32];
    put(json, digits, (size_t)snprintf(digits, sizeof digits, "%.17g", x));
  } else if (PyList_Check(value) || PyTuple_Check(value)) {
    put(json, "[", 1);
    Py_ssize_t count = PySequence_Size(value);
    for (Py_ssize_t i = 0; i < count; i++) {
      PyObject* item = PySequence_GetItem(value, i);  // a new reference
      if (item == NULL) return 0;
      int ok = PyUnicode_Check(item);
      if (!ok) PyErr_Format(PyExc_TypeError, "info lists hold str, not %R", item);
      if (ok && i > 0) put(json, ",", 1);
      ok = ok && putString(json, item);
      Py_DECREF(item);
      if (!ok) return 0;
    }
    put(json, "]", 1);
  } else {
    PyErr_Format(PyExc_TypeError, "an info value is str, a number, bool, None or a list of str, not %R",
                 value);
    return 0;
  }
  return 1;
}

/* An info argument: JSON text as str or bytes, or a dict written as JSON into
 * `*owned` (freed by the caller with PyMem_Free). */
static int info(PyObject* value, const char** out, char** owned) {
  *owned = NULL;
  if (!PyDict_Check(value)) return text(value, out);
  Json json = {NULL, 0, 0, 0};
  put(&json, "{", 1);
  PyObject *key, *item;
  Py_ssize_t position = 0, written = 0;
  while (PyDict_Next(value, &position, &key, &item)) {
    if (written++ > 0) put(&json, ",", 1);
    if (!PyUnicode_Check(key)) {
      PyErr_Format(PyExc_TypeError, "info keys are str, not %R", key);
      PyMem_Free(json.bytes);
      return 0;
    }
    if (!putString(&json, key) || (put(&json, ":", 1), !putValue(&json, item))) {
      PyMem_Free(json.bytes);
      return 0;
    }
  }
  put(&json, "}", 1);
  if (json.failed) {
    PyMem_Free(json.bytes);
    PyErr_NoMemory();
    return 0;
  }
  *out = *owned = json.bytes;
  return 1;
}

static PyObject* handleOrNone(void* pointer) {
  if (pointer == NULL) Py_RETURN_NONE;
  return PyLong_FromVoidPtr(pointer);
}

/* A string the library returned: as str, and freed; NULL as None. */
static PyObject* takeText(char* owned) {
  if (owned == NULL) Py_RETURN_NONE;
  PyObject* result = PyUnicode_DecodeUTF8(owned, (Py_ssize_t)strlen(owned), "replace");
  tracer_free(owned);
  return result;
}

#define FUNCTION(name) static PyObject* name(PyObject* module, PyObject* const* args, Py_ssize_t n)

FUNCTION(client_open) {
  const char* path;
  if (!arguments(n, 1, "tracer_client_open") || !text(args[0], &path)) return NULL;
  return handleOrNone(tracer_client_open(path));
}

FUNCTION(client_close) {
  void* client;
  if (!arguments(n, 1, "tracer_client_close") || !handle(args[0], &client)) return NULL;
  Py_BEGIN_ALLOW_THREADS;  // joins the library's thread
  tracer_client_close(client);
  Py_END_ALLOW_THREADS;
  Py_RETURN_NONE;
}

FUNCTION(client_wait_connected) {
  void* client;
  int timeoutMs, connected;
  if (!arguments(n, 2, "tracer_client_wait_connected") || !handle(args[0], &client) ||
      !number(args[1], &timeoutMs)) {
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS;
  connected = tracer_client_wait_connected(client, timeoutMs);
  Py_END_ALLOW_THREADS;
  return PyLong_FromLong(connected);
}

/* A call that waits up to a timeout for a string: (handle, timeout_ms) -> str or None. */
#define WAITS_FOR_TEXT(name)                                                         \
  FUNCTION(name) {                                                                   \
    void* of;                                                                        \
    int timeoutMs;                                                                   \
    char* answer;                                                                    \
    if (!arguments(n, 2, "tracer_" #name) || !handle(args[0], &of) ||                \
        !number(args[1], &timeoutMs)) {                                              \
      return NULL;                                                                   \
    }                                                                                \
    Py_BEGIN_ALLOW_THREADS;                                                          \
    answer = tracer_##name(of, timeoutMs);                                           \
    Py_END_ALLOW_THREADS;                                                            \
    return takeText(answer);                                                         \
  }

WAITS_FOR_TEXT(client_status)

FUNCTION(client_admin) {
  void* client;
  const char *method, *params;
  int timeoutMs;
  char* results;
  if (!arguments(n, 4, "tracer_client_admin") || !handle(args[0], &client) ||
      !text(args[1], &method) || !text(args[2], &params) || !number(args[3], &timeoutMs)) {
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS;
  results = tracer_client_admin(client, method, params, timeoutMs);
  Py_END_ALLOW_THREADS;
  return takeText(results);
}

FUNCTION(flow_open) {
  void* client;
  const char* json;
  char* owned;
  if (!arguments(n, 2, "tracer_flow_open") || !handle(args[0], &client) ||
      !info(args[1], &json, &owned)) {
    return NULL;
  }
  tracer_flow* flow = tracer_flow_open(client, json);
  PyMem_Free(owned);
  return handleOrNone(flow);
}

FUNCTION(flow_finish) {
  void* flow;
  const char* state;
  int timeoutMs, finished;
  if (!arguments(n, 3, "tracer_flow_finish") || !handle(args[0], &flow) ||
      !text(args[1], &state) || !number(args[2], &timeoutMs)) {
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS;
  finished = tracer_flow_finish(flow, state, timeoutMs);
  Py_END_ALLOW_THREADS;
  return PyLong_FromLong(finished);
}

FUNCTION(task_start) {
  void* flow;
  const char* json;
  char* owned;
  int tid, waitMs;
  tracer_task* task;
  if (!arguments(n, 4, "tracer_task_start") || !handle(args[0], &flow) ||
      !number(args[2], &tid) || !number(args[3], &waitMs) || !info(args[1], &json, &owned)) {
    return NULL;
  }
  if (waitMs > 0) {
    Py_BEGIN_ALLOW_THREADS;
    task = tracer_task_start(flow, json, tid, waitMs);
    Py_END_ALLOW_THREADS;
  } else {
    task = tracer_task_start(flow, json, tid, waitMs);  // one-way: hands it over, returns
  }
  PyMem_Free(owned);
  return handleOrNone(task);
}

FUNCTION(task_status) {
  void* task;
  if (!arguments(n, 1, "tracer_task_status") || !handle(args[0], &task)) return NULL;
  return PyLong_FromLong(tracer_task_status(task));
}

FUNCTION(task_finish) {
  void* task;
  const char* state;
  tracer_report* report = NULL;
  int wanted;
  if (!arguments(n, 3, "tracer_task_finish") || !handle(args[0], &task) ||
      !text(args[1], &state) || (wanted = PyObject_IsTrue(args[2])) < 0) {
    return NULL;
  }
  if (tracer_task_finish(task, state, wanted ? &report : NULL) != 0) return PyLong_FromLong(-1);
  return PyLong_FromVoidPtr(report);
}

WAITS_FOR_TEXT(report_wait)

FUNCTION(report_free) {
  void* report;
  if (!arguments(n, 1, "tracer_report_free") || !handle(args[0], &report)) return NULL;
  tracer_report_free(report);
  Py_RETURN_NONE;
}

FUNCTION(client_dropped) {
  void* client;
  if (!arguments(n, 1, "tracer_client_dropped") || !handle(args[0], &client)) return NULL;
  return PyLong_FromUnsignedLongLong(tracer_client_dropped(client));
}

FUNCTION(last_error) {
  if (!arguments(n, 0, "tracer_last_error")) return NULL;
  const char* error = tracer_last_error();
  return PyUnicode_DecodeUTF8(error, (Py_ssize_t)strlen(error), "replace");
}

#define METHOD(name, doc) {"tracer_" #name, (PyCFunction)(void (*)(void))name, METH_FASTCALL, doc}

static PyMethodDef methods[] = {
    METHOD(client_open, "(socket_path or None) -> client"),
    METHOD(client_close, "(client)"),
    METHOD(client_wait_connected, "(client, timeout_ms) -> 1 once connected, else 0"),
    METHOD(client_status, "(client, timeout_ms) -> SidecarStatus JSON or None"),
    METHOD(client_admin, "(client, method, params_json, timeout_ms) -> results JSON or None"),
    METHOD(flow_open, "(client, info: JSON or dict) -> flow or None"),
    METHOD(flow_finish, "(flow, state, timeout_ms) -> 0 confirmed, 1 on its way, -1 failed"),
    METHOD(task_start, "(flow, info: JSON or dict, tid, wait_ms) -> task or None"),
    METHOD(task_status, "(task) -> 1 registered, 0 no answer yet, -1 refused"),
    METHOD(task_finish, "(task, state, want_report) -> report (0: none asked), -1 not sent"),
    METHOD(report_wait, "(report, timeout_ms) -> TaskReport JSON or None"),
    METHOD(report_free, "(report)"),
    METHOD(client_dropped, "(client) -> starts and flow runs dropped"),
    METHOD(last_error, "() -> the calling thread's last error"),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tracer_client", "libtracer_client.so's C ABI (tracer_client.h).",
    0, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tracer_client(void) { return PyModuleDef_Init(&module); }
