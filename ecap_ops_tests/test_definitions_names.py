"""The names of `ecap_ops.defs` that users, schedules, scripts and alerts rely on.

- A golden file lists every asset (key, group, freshness), asset check (asset, name, blocking),
  job, schedule (cron, timezone, job), sensor and resource of the code location as the code
  server loads it (ECAP_ENV=dev, the shipped catalog, no broker). A rename, a dropped
  definition or a changed cadence shows as a diff of that file. After an intended change:
  `ECAP_UPDATE_GOLDEN=1 .venv/bin/pytest ecap_ops_tests/test_definitions_names.py` rewrites it;
  commit it with the change.
- Every name the architecture promises (docs: "Names that users, scripts and tests rely on")
  is present, with the cadence it promises.
- Freshness policies fit their schedules, and `make validate` (`dg check defs`) loads the code
  location with no broker, and fails, naming the problem, when it cannot.
"""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden" / "definitions_names.txt"
UPDATE_VAR = "ECAP_UPDATE_GOLDEN"
HEADER = (
    "# Names of ecap_ops.defs (ECAP_ENV=dev, the shipped catalog): a rename shows as a diff here.\n"
    f"# After an intended change: {UPDATE_VAR}=1 .venv/bin/pytest ecap_ops_tests/test_definitions_names.py\n"
)

# From the architecture ("Names that users, scripts and tests rely on"): add, don't rename.
JOBS = {
    "provision_topics",
    "kafka_health_check",
    "cleanup_test_topics",
    "dr_snapshot",
    "dr_restore",
    "dr_drill",
    "notify_consumer_lag",
}
SCHEDULES = {
    "kafka_health_check_schedule": "5min",
    "retention_audit_schedule": "daily",
    "cleanup_test_topics_schedule": "daily",
    "dr_snapshot_schedule": "hourly",
    "dr_drill_schedule": "weekly",
}
SENSORS = {"consumer_lag_sensor", "run_failure_alert_sensor"}
ASSET_GROUPS = {"retention_audit": "audits", "kafka_metadata_snapshot": "disaster_recovery"}
TOPIC_GROUP = "kafka_topics"
TOPIC_CHECKS = {"matches_catalog", "availability", "replication"}
RESOURCES = {"kafka", "alerts"}


def _hours(window) -> str:
    return f"{window.to_timedelta().total_seconds() / 3600:g}h"


def _freshness(policy) -> str:
    if policy is None:
        return ""
    warn = getattr(policy, "warn_window", None)
    fail = getattr(policy, "fail_window", None)
    if fail is None:
        return f"  freshness={type(policy).__name__}"
    parts = ([f"warn>{_hours(warn)}"] if warn else []) + [f"fail>{_hours(fail)}"]
    return "  freshness=" + ",".join(parts)


def definitions_listing(defs) -> list[str]:
    """One sorted line per definition of `defs`: kind, name, then what a user would notice."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    lines = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        lines.append(
            f"asset {key.to_user_string()}  group={node.group_name}"
            + _freshness(getattr(node, "freshness_policy", None))
        )
    for ck in graph.asset_check_keys:
        blocking = "  blocking" if graph.get(ck).blocking else ""
        lines.append(f"check {ck.asset_key.to_user_string()}:{ck.name}{blocking}")
    for job in repo.get_all_jobs():
        if not job.name.startswith("__"):  # Dagster's implicit asset job is no user's name
            lines.append(f"job {job.name}")
    for s in repo.schedule_defs:
        lines.append(
            f'schedule {s.name}  cron="{s.cron_schedule}"  tz={s.execution_timezone or "UTC"}'
            f"  job={s.job_name}"
        )
    for s in repo.sensor_defs:
        target = f"  job={s.job_name}" if len(s.targets) == 1 else ""
        lines.append(
            f"sensor {s.name}  type={s.sensor_type.value.lower()}"
            f"  interval={s.minimum_interval_seconds}s{target}"
        )
    for name in defs.resources or {}:
        lines.append(f"resource {name}")
    return sorted(lines)


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No ECAP_* or Kafka settings from the caller's shell; a broker address nothing listens on."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "DAGSTER_HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "PYTHONWARNINGS": "ignore",
        **extra,
    }


@pytest.fixture(scope="module")
def listing(tmp_path_factory) -> list[str]:
    """The listing of `ecap_ops.defs` as a code server with a clean environment builds it."""
    code = (
        "import json; from ecap_ops import defs; "
        "from ecap_ops_tests.test_definitions_names import definitions_listing; "
        "print(json.dumps(definitions_listing(defs)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_clean_env(tmp_path_factory.mktemp("defs")),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _by_kind(listing: list[str], kind: str) -> dict[str, str]:
    """name -> the rest of its line, for the lines of one kind."""
    out = {}
    for line in listing:
        k, _, rest = line.partition(" ")
        if k == kind:
            name, _, attrs = rest.partition("  ")
            out[name] = attrs
    return out


def _update_requested(environ) -> bool:
    """Only ECAP_UPDATE_GOLDEN=1 rewrites the committed file; anything else compares."""
    return environ.get(UPDATE_VAR) == "1"


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=20)))
def test_only_the_exact_switch_rewrites_the_golden_file(value):
    environ = {} if value is None else {UPDATE_VAR: value}
    assert _update_requested(environ) is (value == "1")


def test_the_names_match_the_golden_file(listing):
    text = HEADER + "\n".join(listing) + "\n"
    if _update_requested(os.environ):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"{GOLDEN} is missing: run with {UPDATE_VAR}=1 to write it"
    golden = GOLDEN.read_text()
    if golden != text:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                golden.splitlines(keepends=True),
                text.splitlines(keepends=True),
                "golden/definitions_names.txt",
                "ecap_ops.defs now",
            )
        )
        pytest.fail(
            "The code location's names changed. Users, schedules and scripts rely on them: "
            "add, don't rename. If the change is intended, rerun with "
            f"{UPDATE_VAR}=1 and commit the golden file.\n{diff}"
        )


def test_the_listing_has_every_kind_and_no_duplicates(listing):
    assert len(listing) == len(set(listing))
    kinds = {line.split(" ", 1)[0] for line in listing}
    assert kinds == {"asset", "check", "job", "schedule", "sensor", "resource"}
    # Names are unique within a kind (a duplicate would make two lines with one name).
    for kind in kinds:
        names = [line.split("  ")[0] for line in listing if line.startswith(kind + " ")]
        assert len(names) == len(set(names)), kind


def test_every_topic_of_the_catalog_is_an_asset_with_its_three_checks(listing):
    from ecap_ops.catalog import load_catalog
    from ecap_ops.catalog.loader import default_catalog_path

    catalog = load_catalog(default_catalog_path(), env="dev")
    assets = _by_kind(listing, "asset")
    checks = set(_by_kind(listing, "check"))
    topic_keys = {k for k, attrs in assets.items() if f"group={TOPIC_GROUP}" in attrs}
    assert topic_keys == {f"kafka/{t.name}" for t in catalog.topics}
    assert len(topic_keys) >= 5  # the platform's five topics, at least
    for key in topic_keys:
        assert {f"{key}:{c}" for c in TOPIC_CHECKS} <= checks, key
    # Every check hangs off an asset that exists.
    assert {c.rsplit(":", 1)[0] for c in checks} <= set(assets)


def test_the_assets_jobs_sensors_and_resources_users_rely_on_exist(listing):
    assets = _by_kind(listing, "asset")
    for name, group in ASSET_GROUPS.items():
        assert name in assets, name
        assert f"group={group}" in assets[name], (name, assets[name])
    assert set(_by_kind(listing, "job")) >= JOBS
    sensors = _by_kind(listing, "sensor")
    assert set(sensors) >= SENSORS
    assert "interval=30s" in sensors["consumer_lag_sensor"]
    assert "type=run_status" in sensors["run_failure_alert_sensor"]
    assert "job=notify_consumer_lag" in sensors["consumer_lag_sensor"]
    assert set(_by_kind(listing, "resource")) >= RESOURCES


def _cadence(cron: str) -> str:
    """5min / hourly / daily / weekly for the crons the schedules use; '?' otherwise."""
    f = cron.split()
    if len(f) != 5:
        return "?"
    minute, hour, dom, month, dow = f
    fixed = re.compile(r"^\d+$")
    if f == ["*/5", "*", "*", "*", "*"]:
        return "5min"
    if fixed.match(minute) and hour == dom == month == dow == "*":
        return "hourly"
    if fixed.match(minute) and fixed.match(hour) and dom == month == dow == "*":
        return "daily"
    if fixed.match(minute) and fixed.match(hour) and dom == month == "*" and fixed.match(dow):
        return "weekly"
    return "?"


@pytest.mark.parametrize(
    "cron, cadence",
    [
        ("*/5 * * * *", "5min"),
        ("0 * * * *", "hourly"),
        ("30 3 * * *", "daily"),
        ("0 4 * * 1", "weekly"),
        ("*/10 * * * *", "?"),
        ("0 */2 * * *", "?"),
        ("30 3 1 * *", "?"),
        ("0 4 * * 1-5", "?"),
        ("* * * *", "?"),
    ],
)
def test_cadence_reading(cron, cadence):
    assert _cadence(cron) == cadence


def test_the_schedules_run_at_the_promised_cadence(listing):
    schedules = _by_kind(listing, "schedule")
    assert set(schedules) >= set(SCHEDULES)
    for name, cadence in SCHEDULES.items():
        cron = re.search(r'cron="([^"]*)"', schedules[name]).group(1)
        assert _cadence(cron) == cadence, (name, cron)
    assert "job=retention_audit_job" in schedules["retention_audit_schedule"]
    assert "job=kafka_health_check" in schedules["kafka_health_check_schedule"]


def _specs_by_key(defs) -> dict[str, object]:
    return {
        spec.key.to_user_string(): spec
        for a in defs.assets or []
        for spec in getattr(a, "specs", [])
    }


@pytest.mark.parametrize(
    "area, asset, cadence",
    [
        ("audits", "retention_audit", timedelta(days=1)),
        ("dr", "kafka_metadata_snapshot", timedelta(hours=1)),
    ],
)
def test_freshness_fits_the_schedule(area, asset, cadence):
    """Fresh through one scheduled interval plus slack (a run that starts late or runs long
    does not warn); a missed run warns; failing only after about two intervals."""
    import importlib

    from ecap_ops.catalog import load_catalog
    from ecap_ops.catalog.loader import default_catalog_path

    module = importlib.import_module(f"ecap_ops.orchestration.{area}")
    defs = module.build_defs(load_catalog(default_catalog_path(), env="dev"))
    policy = _specs_by_key(defs)[asset].freshness_policy
    assert policy is not None, f"{asset} has no freshness policy"
    assert policy.warn_window is not None
    warn, fail = policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()
    assert cadence < warn <= cadence * 1.5, (asset, warn)
    assert 1.9 * cadence <= fail <= 2.5 * cadence and warn < fail, (asset, fail)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=400,
    ).filter(lambda v: v not in ("dev", "prod"))
)
def test_an_unknown_environment_stops_the_code_location_naming_it(monkeypatch, value):
    """The code location refuses to load for an ECAP_ENV the catalog does not know, saying
    which variable and which environments exist, and shows at most a prefix of the value."""
    from ecap_ops.definitions import build_definitions
    from ecap_ops.errors import CatalogInvalid

    monkeypatch.delenv("ECAP_CATALOG", raising=False)
    monkeypatch.setenv("ECAP_ENV", value)
    with pytest.raises(CatalogInvalid) as info:
        build_definitions()
    message = str(info.value)
    assert "ECAP_ENV" in message and "dev, prod" in message
    assert len(message) < 600
    if len(value) > 200:
        assert value not in message


# -- make validate: `dg check defs` ----------------------------------------------------------


def _make_validate(env: dict[str, str]) -> subprocess.CompletedProcess:
    # -o: take the venv as installed (the test runs in it); a test never reinstalls it.
    return subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "validate"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_make_validate_loads_the_code_location_without_a_broker_quietly(tmp_path):
    out = _make_validate(_clean_env(tmp_path))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "All definitions loaded successfully." in text
    # Quiet: no deprecation notice of the superseded command, no warning, no welcome banner.
    for noise in ("superseded", "Warning", "WARNING", "Welcome", "virtual environment"):
        assert noise not in text, (noise, text[-2000:])
    assert len(text.strip().splitlines()) <= 3, text


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "does not exist"),
        ("broken_yaml", "(YAML, line"),
        ("bad_env", "is not an environment of the catalog"),
    ],
)
def test_make_validate_fails_naming_the_problem(tmp_path, case, expected):
    extra = {}
    if case == "missing":
        extra["ECAP_CATALOG"] = str(tmp_path / "no-such-catalog.yaml")
    elif case == "broken_yaml":
        bad = tmp_path / "catalog.yaml"
        bad.write_text("topics: [\n  - name: x\n")
        extra["ECAP_CATALOG"] = str(bad)
    else:
        extra["ECAP_ENV"] = "staging;rm -rf /"
    out = _make_validate(_clean_env(tmp_path, **extra))
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-2000:]
    assert expected in text, text[-3000:]
    assert "CatalogInvalid" in text
