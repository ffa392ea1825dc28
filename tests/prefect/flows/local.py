"""A flow run the way users run one without a worker: `python local.py MODE`.

MODE says what else the process does, as a user's code might:
  plain           nothing else
  provider-before sets its own OpenTelemetry TracerProvider before `import prefect`
  provider-after  sets its own TracerProvider after `import prefect`
  serve           flow.serve(): the process waits for runs triggered through the API
Prints the flow run's id, then its final state name last."""

import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "plain"

if MODE == "provider-before":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())

from prefect import flow, task  # noqa: E402

if MODE == "provider-after":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    users_provider = TracerProvider()
    trace.set_tracer_provider(users_provider)
    assert trace.get_tracer_provider() is users_provider, "the user's provider was refused"


@task
def extract() -> int:
    return sum(range(100_000))


@task
def load(rows: int) -> int:
    return rows % 7


@flow
def local_etl() -> int:
    return load(extract())


if __name__ == "__main__":
    if MODE == "serve":
        local_etl.serve(name="served")
    else:
        state = local_etl(return_state=True)
        print(state.state_details.flow_run_id)
        print(state.name)
