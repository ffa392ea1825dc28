// The JSON form of the contract (docs/architecture.md, "Contracts"), both directions.
#include <capnp/message.h>
#include <catch2/catch.hpp>

#include "contract_json.h"
#include "tracer.capnp.h"

using tracer::fromContractJson;
using tracer::toContractJson;

TEST_CASE("camelCase field names become the contract's snake_case") {
  CHECK(tracer::camelToSnake("taskRunId") == "task_run_id");
  CHECK(tracer::camelToSnake("p95Cores") == "p95_cores");
  CHECK(tracer::camelToSnake("wallNs") == "wall_ns");
  CHECK(tracer::camelToSnake("lost") == "lost");
}

TEST_CASE("a TaskReport encodes groups as objects and integers as numbers") {
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<tracer::proto::TaskReport>();
  report.setTaskRunId("t-1");
  report.setState(tracer::proto::RunState::CRASHED);
  report.setWallNs(18446744073709551615ull);
  report.getProc().setSpawned(3);
  report.getCpu().setAvgCores(0.5);
  report.setTaskName("quote \" and \\ and\nnewline");
  auto json = toContractJson(capnp::toDynamic(report.asReader()));
  CHECK_THAT(json.cStr(), Catch::StartsWith("{\"task_run_id\":\"t-1\",\"flow_run_id\":\"\","));
  CHECK_THAT(json.cStr(), Catch::Contains("\"task_name\":\"quote \\\" and \\\\ and\\nnewline\""));
  CHECK_THAT(json.cStr(), Catch::Contains("\"state\":\"crashed\",\"wall_ns\":18446744073709551615,"));
  CHECK_THAT(json.cStr(), Catch::Contains("\"proc\":{\"spawned\":3,\"execs\":0,"));
  CHECK_THAT(json.cStr(), Catch::Contains("\"avg_cores\":0.5,"));
  CHECK_THAT(json.cStr(), Catch::Contains("\"top\":[]"));
}

TEST_CASE("fields a collector cannot know are null, and read back as unknown") {
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<tracer::proto::TaskReport>();
  auto unknown = report.initUnknown(2);
  unknown.set(0, "net.tx_bytes");
  unknown.set(1, "proc.top");
  auto json = toContractJson(capnp::toDynamic(report.asReader()));
  CHECK_THAT(json.cStr(), Catch::Contains("\"net\":{\"tx_bytes\":null,\"rx_bytes\":0,"));
  CHECK_THAT(json.cStr(), Catch::Contains("\"top\":null"));

  capnp::MallocMessageBuilder back;
  auto parsed = back.initRoot<tracer::proto::TaskReport>();
  fromContractJson(json, capnp::toDynamic(parsed));
  CHECK(parsed.getUnknown().size() == 2);
  CHECK(parsed.getNet().getTxBytes() == 0);
}

TEST_CASE("FlowRunInfo and TaskRunInfo decode from snake_case JSON") {
  capnp::MallocMessageBuilder message;
  auto task = message.initRoot<tracer::proto::TaskRunInfo>();
  fromContractJson(R"({"task_run_id":"abc","tags":["etl","nightly"],"tid":42,
                       "start_time_ns":1700000000000000000})",
                   capnp::toDynamic(task));
  CHECK(task.getTaskRunId().asReader() == "abc");
  REQUIRE(task.getTags().size() == 2);
  CHECK(task.getTags()[1].asReader() == "nightly");
  CHECK(task.getTid() == 42);
  CHECK(task.getStartTimeNs() == 1700000000000000000ll);

  auto flow = message.initRoot<tracer::proto::FlowRunInfo>();
  fromContractJson(R"({"flow_run_id":"f","cpu_cores":1.5,"memory_bytes":1073741824})",
                   capnp::toDynamic(flow));
  CHECK(flow.getCpuCores() == 1.5);
  CHECK(flow.getMemoryBytes() == 1073741824u);
}

TEST_CASE("bad info JSON is refused with the key and the struct named") {
  capnp::MallocMessageBuilder message;
  auto task = capnp::toDynamic(message.initRoot<tracer::proto::TaskRunInfo>());
  CHECK_THROWS_WITH(fromContractJson(R"({"task_run_idd":"x"})", task),
                    Catch::Contains("unknown key") && Catch::Contains("task_run_idd") &&
                        Catch::Contains("TaskRunInfo"));
  // Keys match a field's snake_case name exactly: not a prefix of it, not
  // more than it, not its camelCase spelling.
  for (auto key: {"task_run", "task_run_id_", "taskRunId", "task_run_i"}) {
    CHECK_THROWS_WITH(fromContractJson(kj::str("{\"", key, "\":\"x\"}"), task),
                      Catch::Contains("unknown key") && Catch::Contains(key));
  }
  CHECK_THROWS_WITH(fromContractJson(R"({"tid":"seven"})", task),
                    Catch::Contains("expected a number") && Catch::Contains("tid"));
  CHECK_THROWS_WITH(fromContractJson(R"({"tid":1.5})", task),
                    Catch::Contains("expected an integer"));
  CHECK_THROWS_WITH(fromContractJson(R"({"tags":"etl"})", task),
                    Catch::Contains("expected a list"));
  CHECK_THROWS_WITH(fromContractJson(R"([1,2])", task), Catch::Contains("expected a JSON object"));
  CHECK_THROWS(fromContractJson(R"({"task_run_id": )", task));

  auto flow = capnp::toDynamic(message.initRoot<tracer::proto::FlowRunInfo>());
  CHECK_THROWS_WITH(fromContractJson(R"({"memory_bytes":-1})", flow),
                    Catch::Contains("expected a non-negative integer"));
}

TEST_CASE("run states round-trip by name") {
  capnp::MallocMessageBuilder message;
  auto report = message.initRoot<tracer::proto::TaskReport>();
  fromContractJson(R"({"state":"cancelled"})", capnp::toDynamic(report));
  CHECK(report.getState() == tracer::proto::RunState::CANCELLED);
  CHECK_THROWS_WITH(fromContractJson(R"({"state":"exploded"})", capnp::toDynamic(report)),
                    Catch::Contains("unknown value"));
}

TEST_CASE("JSON text is read with its \\u escapes as the characters they stand for") {
  // Cap'n Proto 0.9's codec alone reads \u001f as 0x15 and \u00e9 as 0x95.
  auto read = [](kj::StringPtr json) {
    capnp::MallocMessageBuilder message;
    auto value = message.initRoot<capnp::JsonValue>();
    tracer::decodeJson(json, value);
    return std::string(value.getString().cStr());
  };
  CHECK(read(R"("a\u001fb")") == "a\x1f" "b");
  CHECK(read(R"("caf\u00e9 \u00C9")") == "caf\xc3\xa9 \xc3\x89");
  CHECK(read(R"("\ud83d\ude00")") == "\xf0\x9f\x98\x80");  // a surrogate pair: one character
  CHECK(read(R"("\u0022q\u005c")") == "\"q\\");
  CHECK(read(R"("\\u0041 \n")") == "\\u0041 \n");  // an escaped backslash, then text
  // And through the contract: a name a client sent with control characters.
  capnp::MallocMessageBuilder message;
  auto info = message.initRoot<tracer::proto::TaskRunInfo>();
  tracer::fromContractJson(kj::str("{\"task_name\":", tracer::jsonQuoted("t\x1f\x0b\x01"), "}"),
                   capnp::toDynamic(info));
  CHECK(std::string(info.getTaskName().cStr()) == "t\x1f\x0b\x01");
}
