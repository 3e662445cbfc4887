"""Dagster's sensor daemon, in this process: the same code that `dagster-daemon run` runs
each iteration (`execute_sensor_iteration`: evaluate every running sensor, create the runs
it requests, skip run keys it already used), on a temporary SQLite instance whose run
launcher executes each run at once, in this process.

The code location is a Python file written by the test; its sensors run when
ECAP_SENSORS_DEFAULT=running is set while it loads. Tests use it to prove what only the
daemon does: run keys de-duplicate a retried tick, run-status sensors see failed runs.
"""

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg


class SensorDaemon:
    def __init__(self, instance: dg.DagsterInstance, workspace) -> None:
        self.instance = instance
        self.workspace = workspace
        self.log = logging.getLogger("ecap_ops_tests.sensor_daemon")

    def iterate(self, wait_s: float = 1.1) -> None:
        """One iteration of the sensor daemon, after `wait_s` (the sensors' minimum interval
        is 1 s in these tests)."""
        from dagster._daemon.sensor import execute_sensor_iteration

        time.sleep(wait_s)
        for _ in execute_sensor_iteration(self.workspace, self.log, None, None):
            pass

    def _state(self, name: str):
        from dagster._core.scheduler.instigation import InstigatorType

        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name == name:
                return state
        raise AssertionError(f"no state for sensor {name}")

    def cursor(self, name: str) -> str | None:
        return self._state(name).instigator_data.cursor

    def set_cursor(self, name: str, cursor: str | None) -> None:
        """As if the sensor's last tick had not been saved: the next tick starts again here."""
        state = self._state(name)
        self.instance.update_instigator_state(
            state.with_data(state.instigator_data._replace(cursor=cursor))
        )

    def start(self, name: str) -> None:
        """Start a sensor whose default status is stopped."""
        repo = self._repository()
        self.instance.start_sensor(repo.get_sensor(name))

    def _repository(self):
        ctx = self.workspace.create_request_context()
        (entry,) = ctx.get_code_location_entries().values()
        assert entry.code_location, entry.load_error
        return entry.code_location.get_repository("__repository__")

    def runs(self, job_name: str) -> list:
        return list(reversed(self.instance.get_runs(dg.RunsFilter(job_name=job_name))))


@contextmanager
def sensor_daemon(location_file: Path, env: dict[str, str]) -> Iterator[SensorDaemon]:
    from dagster._core.instance_for_test import instance_for_test
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with instance_for_test(
            synchronous_run_launcher=True, synchronous_run_coordinator=True
        ) as instance:
            origin = InProcessCodeLocationOrigin(
                LoadableTargetOrigin(
                    python_file=str(location_file),
                    attribute="defs",
                    working_directory=str(location_file.parent),
                ),
                location_name="ecap_ops_test",
            )
            target = InProcessWorkspaceLoadTarget(origin)
            with create_test_daemon_workspace_context(target, instance) as workspace:
                yield SensorDaemon(instance, workspace)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
