"""Health incidents: the pure decision table (previous state, this run's report, now) ->
(new state, events), the problems' identities from real evaluated findings, the state's
checks, the alerts, and reading the state back from a Dagster instance (no Kafka)."""

import json

import dagster as dg
import pytest

from ecap_ops.core.health import (
    CRIT,
    OK,
    WARN,
    DiskInfo,
    Finding,
    HealthObservation,
    HealthReport,
    Quorum,
    QuorumVoter,
    evaluate,
    worst,
)
from ecap_ops.core.health_alerts import event_alert
from ecap_ops.core.health_incidents import (
    IncidentPolicy,
    decide,
    problem_items,
    read_state,
)
from ecap_ops.core.state import BrokerInfo, ClusterState, PartitionState, TopicState
from ecap_ops.services.health import health_notifications

T0 = 1_790_000_000.0


def _report(*findings, cluster="cid", offline=None, under_min=None, under=None) -> HealthReport:
    # (severity, check, subject, message[, items]): items as the checks name them.
    fs = tuple(Finding(f[1], f[0], f[2], f[3], tuple(f[4:5] and f[4])) for f in findings) or (
        Finding("brokers", OK, "cluster", "1 broker(s) registered: 1"),
    )
    return HealthReport(
        worst(f.severity for f in fs),
        "dev",
        cluster,
        "b:1",
        0,
        fs,
        {},
        under or {},
        under_min or {},
        offline or {},
    )


def _offline(parts: dict[str, list[int]]) -> HealthReport:
    text = "; ".join(f"{t}: {', '.join(map(str, ps))}" for t, ps in parts.items())
    return _report(
        (CRIT, "partitions", "offline", f"n partition(s) without a leader: {text}"),
        offline=parts,
    )


def _brokers_down(*ids) -> HealthReport:
    return _report(
        (
            WARN,
            "brokers",
            "cluster",
            f"broker(s) {', '.join(map(str, ids))} hold replicas but are not registered (stopped or fenced); live: 1",
            tuple(f"broker {i}" for i in ids),
        )
    )


def _disk(severity, percent) -> HealthReport:
    return _report((severity, "disk", "broker 1 /d", f"{percent}% used, 1 GiB free of 10 GiB"))


H = _report()
W = _report((WARN, "catalog", "catalog", "differs from the catalog: t: retention.ms 1 -> 2"))
C = _offline({"t": [0, 1]})
W_AND_C = _report(
    (WARN, "catalog", "catalog", "differs from the catalog: t: retention.ms 1 -> 2"),
    (CRIT, "partitions", "offline", "2 partition(s) without a leader: t: 0, 1"),
    offline={"t": [0, 1]},
)
UNREACHABLE = _report(
    (CRIT, "connection", "cluster", "unreachable: no broker answered"), cluster=None
)

# Each scenario: runs as (minutes after T0, report, events expected); the state each run
# leaves is the next run's previous state.
SCENARIOS = {
    "healthy stays silent": [(0, H, []), (5, H, []), (600, H, [])],
    "critical opens once, reminds every 30 min, resolves after 2 healthy runs": [
        (0, H, []),
        (5, C, ["open"]),
        (10, C, []),
        (30, C, []),
        (35, C, ["remind-1"]),
        (40, C, []),
        (65, C, ["remind-2"]),
        (70, H, []),
        (75, H, ["resolve"]),
        (80, H, []),
        (85, C, ["open"]),
    ],
    "warning opens once, reminds every 4 h": [
        (0, W, ["open"]),
        (5, W, []),
        (235, W, []),
        (240, W, ["remind-1"]),
        (245, H, []),
        (250, H, ["resolve"]),
    ],
    "warning escalates to critical once; a dip to warning and back is quiet": [
        (0, W, ["open"]),
        (5, W_AND_C, ["escalate"]),
        (10, W, []),
        (15, W_AND_C, []),
        (20, W, []),
        (35, W_AND_C, ["remind-1"]),
    ],
    "while warning, reminders follow the warning interval even after a critical peak": [
        (0, C, ["open"]),
        (5, W, ["changed"]),  # the drift warning is new at the incident's (now warning) level
        (40, W, []),
        (245, W, ["remind-1"]),
    ],
    "a different broker down is a change; the first one again is not": [
        (0, _brokers_down(2), ["open"]),
        (5, _brokers_down(2), []),
        (10, _brokers_down(3), ["changed"]),
        (15, _brokers_down(2, 3), []),
        (20, _brokers_down(2), []),
    ],
    "fewer offline partitions is quiet, other partitions offline is a change": [
        (0, _offline({"t": [0, 1]}), ["open"]),
        (5, _offline({"t": [0]}), []),
        (10, _offline({"t": [0, 1]}), []),
        (15, _offline({"u": [4]}), ["changed"]),
    ],
    "a disk filling further is no change; warning to critical is an escalation": [
        (0, _disk(WARN, 81), ["open"]),
        (5, _disk(WARN, 84), []),
        (10, _disk(CRIT, 91), ["escalate"]),
        (15, _disk(CRIT, 95), []),
    ],
    "flapping between critical and healthy keeps one incident": [
        (0, C, ["open"]),
        (5, H, []),
        (10, C, []),
        (15, H, []),
        (20, C, []),
        (25, H, []),
        (30, H, ["resolve"]),
    ],
    "unreachable is critical; the cluster answering with a known problem is a change": [
        (0, UNREACHABLE, ["open"]),
        (5, UNREACHABLE, []),
        (10, C, ["changed"]),
        (15, H, []),
        (20, H, ["resolve"]),
    ],
}


@pytest.mark.parametrize("runs", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_decision_table(runs):
    state = None
    for minute, report, expected in runs:
        d = decide(state, report, T0 + minute * 60)
        assert [e.event_name for e in d.events] == expected, f"at minute {minute}"
        # The state survives a JSON round trip (it is stored as JSON metadata).
        state = json.loads(json.dumps(d.state))
        assert read_state(state) == (state, None)


POLICIES = {
    "resolve at the first healthy run": (
        IncidentPolicy(resolve_after_runs=1),
        [(0, C, ["open"]), (5, H, ["resolve"]), (10, H, [])],
    ),
    "critical only: warnings open nothing, a warning resolves": (
        IncidentPolicy(alert_on=CRIT),
        [
            (0, W, []),
            (5, W_AND_C, ["open"]),
            (10, W, []),
            (15, W, ["resolve"]),
            (20, W, []),
        ],
    ),
    "no reminders": (
        IncidentPolicy(remind_critical_s=0, remind_warning_s=0),
        [(0, C, ["open"]), (60, C, []), (600, C, [])],
    ),
    "reminders every 10 minutes": (
        IncidentPolicy(remind_critical_s=600),
        [(0, C, ["open"]), (5, C, []), (10, C, ["remind-1"]), (20, C, ["remind-2"])],
    ),
}


@pytest.mark.parametrize("policy, runs", POLICIES.values(), ids=POLICIES.keys())
def test_decision_table_with_policies(policy, runs):
    state = None
    for minute, report, expected in runs:
        d = decide(state, report, T0 + minute * 60, policy)
        assert [e.event_name for e in d.events] == expected, f"at minute {minute}"
        state = d.state


def test_open_and_resolve_carry_severity_duration_and_what_it_was():
    d1 = decide(None, C, T0)
    (opened,) = d1.events
    assert opened.severity == "critical" and opened.level == CRIT
    a = event_alert(opened, C, run_url="http://ui/runs/1")
    assert a.severity == "critical" and a.source == "health_check" and "opened" in a.title
    assert a.key == opened.incident_id and a.fields["status"] == CRIT
    assert a.fields["event"] == "open" and a.fields["findings"][0]["check"] == "partitions"
    d2 = decide(d1.state, H, T0 + 3000)
    d3 = decide(d2.state, H, T0 + 4200)
    (resolved,) = d3.events
    assert resolved.kind == "resolve" and resolved.incident_id == opened.incident_id
    assert resolved.duration_seconds == 4200 and resolved.peak == CRIT
    a = event_alert(resolved, H)
    assert a.severity == "resolved" and "1h 10m" in a.title and "worst CRIT" in a.title
    assert a.fields["duration_seconds"] == 4200
    assert any("without a leader" in line for line in a.text.splitlines())
    assert d3.state["incident"] is None


def test_a_warning_incident_notifies_at_warning_severity():
    (e,) = decide(None, W, T0).events
    assert e.severity == "warning" and event_alert(e, W).severity == "warning"


def test_changed_says_what_is_new():
    d = decide(None, _brokers_down(2), T0)
    (e,) = decide(d.state, _brokers_down(3), T0 + 300).events
    assert e.kind == "changed"
    text = event_alert(e, _brokers_down(3)).text
    assert "new since the last message" in text and "broker(s) 3" in text


@pytest.mark.parametrize(
    "stored, why",
    [
        ("not json", "not an object"),
        ({"v": 99}, "version"),
        ({"v": 1, "incident": {"id": "x"}}, "cannot be read"),
        (
            {
                "v": 1,
                "incident": {
                    "id": "x",
                    "level": "BAD",
                    "peak": CRIT,
                    "known": {},
                    "summary": [],
                    "opened": 0,
                    "last": 0,
                    "n": 0,
                    "healthy": 0,
                },
            },
            "unexpected",
        ),  # fmt: skip
    ],
)
def test_an_unreadable_state_counts_as_no_incident_and_says_why(stored, why):
    state, reason = read_state(stored)
    assert state is None and why in reason
    decision, alerts = health_notifications(stored, C, T0)
    assert [e.kind for e in decision.events] == ["open"] and len(alerts) == 1
    assert "ignored" in decision.notes[0] and why in decision.notes[0]


def test_no_state_yet_is_no_incident_without_a_note():
    assert read_state(None) == (None, None)
    decision, alerts = health_notifications(None, H, T0)
    assert decision.events == () and alerts == [] and decision.notes == ()


def test_another_cluster_id_drops_the_incident_with_a_note():
    d = decide(None, C, T0)
    other = _offline({"t": [0, 1]})
    other = HealthReport(**{**other.__dict__, "cluster_id": "other"})
    d2 = decide(d.state, other, T0 + 300)
    assert [e.kind for e in d2.events] == ["open"] and "cluster id changed" in d2.notes[0]


# ---- identities of real findings (the messages evaluate() writes) -------------------------


def _cluster_obs(**kw) -> HealthObservation:
    topics = {
        "t": TopicState("t", tuple(PartitionState(i, 1, (1, 2, 3), (1, 2, 3)) for i in range(3)))
    }
    base = dict(
        bootstrap="b:1",
        env="dev",
        at_ms=int(T0 * 1000),
        cluster=ClusterState("cid", 1, tuple(BrokerInfo(b, "h", 9092) for b in (1, 2, 3)), topics),
        disks=(DiskInfo(1, "/d", None, 100, 50),),
        quorum=Quorum(1, 100, (QuorumVoter(1, 100, int(T0 * 1000)),)),
    )
    base.update(kw)
    return HealthObservation(**base)


def _keys(report) -> set[str]:
    return set(problem_items(report))


def _missing(*topics) -> HealthReport:
    text = f"catalog topic(s) missing: {', '.join(topics)} (run `ecap-ops create-topics`)"
    return _report((CRIT, "catalog", "catalog", text, tuple(f"missing {t}" for t in topics)))


def test_missing_catalog_topics_are_one_problem_each():
    # Identity comes from the finding's items (what the catalog check names), not its text.
    ab, a, c = _missing("a", "b"), _missing("a"), _missing("c")
    assert _keys(a) < _keys(ab) and not (_keys(c) & _keys(ab))
    state = decide(None, ab, T0).state
    assert decide(state, a, T0 + 300).events == ()
    assert [e.kind for e in decide(state, c, T0 + 300).events] == ["changed"]


def test_brokers_not_registered_are_one_problem_each():
    def down(*ids):
        return _brokers_down(*ids)

    assert [f.check for f in down(2).problems()] == ["brokers"]
    assert _keys(down(2)) != _keys(down(3))
    assert _keys(down(2)) | _keys(down(3)) == _keys(down(2, 3))


def test_the_message_text_is_not_identity():
    """Two findings with the same check, subject and items are one problem whatever their
    messages say; a finding without items is one problem per check and subject."""
    one = _report((WARN, "brokers", "cluster", "broker(s) 2 hold replicas", ("broker 2",)))
    reworded = _report((WARN, "brokers", "cluster", "broker 2 is gone, live: 1, 3", ("broker 2",)))
    assert _keys(one) == _keys(reworded)
    plain = _report((WARN, "quorum", "quorum", "voter 2 is 5,000 records behind"))
    other = _report((WARN, "quorum", "quorum", "voter 3 is 9,000 records behind"))
    assert _keys(plain) == _keys(other)
    state = decide(None, plain, T0).state
    assert decide(state, other, T0 + 300).events == ()


def test_measurements_are_not_identity():
    r1 = evaluate(_cluster_obs(disks=(DiskInfo(1, "/d", None, 100, 15),)))
    r2 = evaluate(_cluster_obs(disks=(DiskInfo(1, "/d", None, 100, 12),)))
    assert r1.status == WARN and _keys(r1) == _keys(r2)


# ---- the state in a Dagster instance ------------------------------------------------------


def _observe(metadata: dict):
    from ecap_ops.orchestration.health import HEALTH_STATE_KEY

    @dg.op
    def write(context):
        context.log_event(dg.AssetObservation(asset_key=HEALTH_STATE_KEY, metadata=metadata))

    @dg.job
    def write_state():
        write()

    return write_state


def test_the_state_is_read_back_from_the_instance_and_garbage_falls_back():
    from ecap_ops.orchestration.health import read_incident_state, state_observation

    with dg.DagsterInstance.ephemeral() as instance:
        assert read_incident_state(instance) == (None, None)
        d = decide(None, C, T0)
        obs = state_observation(d.state, d.events)

        @dg.op
        def write(context):
            context.log_event(obs)

        @dg.job
        def record():
            write()

        assert record.execute_in_process(instance=instance).success
        stored, why = read_incident_state(instance)
        assert why is None and read_state(stored) == (d.state, None)
        # The latest observation wins; one without the state is no incident, with a reason.
        assert _observe({"status": "OK"}).execute_in_process(instance=instance).success
        stored, why = read_incident_state(instance)
        assert stored is None and "no incident_state" in why
        assert (
            _observe({"incident_state": dg.MetadataValue.json({"v": 0})})
            .execute_in_process(instance=instance)
            .success
        )
        stored, why = read_incident_state(instance)
        assert why is None and read_state(stored)[0] is None


def test_reading_never_raises():
    from ecap_ops.orchestration.health import read_incident_state

    class Broken:
        def fetch_observations(self, *a, **kw):
            raise RuntimeError("database is locked")

        fetch_materializations = fetch_observations

    stored, why = read_incident_state(Broken())
    assert stored is None and "database is locked" in why
