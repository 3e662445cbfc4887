"""core/incidents.py: the one incident model (open, escalate, changed, remind, resolve over
levels OK/WARN/CRIT) and the typed events' wire form, with hostile wires. No broker."""

import json

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.core import incidents
from ecap_ops.core.drill_incidents import DrillFacts
from ecap_ops.core.drill_incidents import decide as decide_drill
from ecap_ops.core.health import CRIT, Finding, HealthReport
from ecap_ops.core.health_incidents import decide as decide_health
from ecap_ops.core.incidents import OK, WARN, IncidentRules, from_wire, step, to_alert, to_wire
from ecap_ops.core.lag_model import IncidentEvent

RULES = IncidentRules(remind_warning_s=100, remind_critical_s=10, resolve_after=2)


def _run(levels, rules=RULES, changed=()):
    """Events over evaluations one second apart, as (second, event name)."""
    track, out, n = None, [], iter(range(1000))
    for t, level in enumerate(levels):
        s = step(track, level, t, rules, lambda: f"i{next(n)}", changed=t in changed)
        if s.kind:
            out.append((t, s.name))
        track = s.track
    return out


def test_the_rules_in_order():
    assert _run([OK, OK]) == []
    assert _run([WARN, WARN, CRIT, WARN, CRIT]) == [(0, "open"), (2, "escalate")]
    assert _run([CRIT, OK, CRIT, OK, OK, OK]) == [(0, "open"), (4, "resolve")]
    # Reminders follow the current level's interval; none while recovering (OK, not clean yet).
    assert _run([CRIT] * 21) == [(0, "open"), (10, "remind-1"), (20, "remind-2")]
    assert _run([CRIT] + [WARN] * 20) == [(0, "open")]
    assert _run([WARN, WARN, WARN], changed={1, 2}) == [(0, "open"), (1, "changed-1"), (2, "changed-2")]  # fmt: skip
    assert _run([CRIT] * 30, IncidentRules(0, 0, 1)) == [(0, "open")]  # 0: no reminders


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([OK, WARN, CRIT]), max_size=40))
def test_any_sequence_names_each_event_once_and_never_resolves_what_is_not_open(levels):
    events = _run(levels)
    names = [name for _, name in events]
    opens = [i for i, n in enumerate(names) if n == "open"]
    resolves = [i for i, n in enumerate(names) if n == "resolve"]
    assert len(resolves) <= len(opens) <= len(resolves) + 1
    # Between two opens there is exactly one resolve.
    for a, b in zip(opens, opens[1:], strict=False):
        assert names[a:b].count("resolve") == 1
    # Within one incident, every event name (the run key's tail) is unique.
    for a, b in zip(opens, opens[1:] + [len(names)], strict=False):
        assert len(set(names[a:b])) == b - a


def test_bad_levels_and_rules_are_refused():
    with pytest.raises(ValueError, match="level must be one of"):
        step(None, "warning", 0, RULES, lambda: "x")
    with pytest.raises(ValueError):
        IncidentRules(resolve_after=0)
    assert incidents.level_of("critical") == incidents.CRIT and incidents.level_of("info") == OK


def _lag_event(kind="open", secs_kind="at_least") -> IncidentEvent:
    return IncidentEvent(
        kind, "lag:c:1-1", "c", "g", "t", "STOPPED", "critical", 200.0, 100.0, 12400, 185.0,
        ({"topic": "t", "partition": 0, "status": "STOPPED", "lag_msgs": 12400, "end": 9},),
        lag_seconds_kind=secs_kind,
    )  # fmt: skip


def _health_event():
    report = HealthReport(
        CRIT, "dev", "cid", "b:1", 0,
        (Finding("partitions", CRIT, "offline", "1 partition(s) without a leader: t: 0"),),
        {}, {}, {}, {"t": [0]},
    )  # fmt: skip
    (event,) = decide_health(None, report, 1000.0).events
    return event


def _drill_event():
    (event,) = decide_drill(None, DrillFacts(False, "s.json", "abc", ("t",), (), "x t"), 5.0).events
    return event


@pytest.mark.parametrize("make", [_lag_event, _health_event, _drill_event])
def test_each_event_crosses_the_wire_as_it_is(make):
    event = make()
    wire = json.loads(json.dumps(to_wire(event)))  # what a run's config holds
    back = from_wire(wire)
    assert back == event and to_alert(back).title == to_alert(event).title


def test_the_lag_mark_survives_the_wire():
    back = from_wire(json.loads(json.dumps(to_wire(_lag_event()))))
    assert "12,400 msgs / >=3m05s" in to_alert(back).title


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(["consumer_lag", "health_check", "dr_drill", "nope", ""]),
    body=st.dictionaries(st.text(max_size=12), _JSON, max_size=6),
    base=st.sampled_from([None, _lag_event, _health_event, _drill_event]),
)
def test_a_hostile_wire_is_a_value_error_naming_the_problem(source, body, base):
    wire = {**(to_wire(base()) if base else {}), **body, "source": source}
    try:
        event = from_wire(wire)
    except ValueError as exc:
        assert str(exc) and len(str(exc)) < 600
        return
    to_alert(event)  # whatever reads back renders


def test_the_notify_job_refuses_a_bad_event_naming_it():
    from ecap_ops.orchestration.alerts import AlertsResource
    from ecap_ops.orchestration.lag import notify_consumer_lag

    result = notify_consumer_lag.execute_in_process(
        run_config={"ops": {"send_notification": {"config": {"event": {"source": "x" * 500}}}}},
        resources={"alerts": AlertsResource()},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    text = failure.step_failure_data.user_failure_data.description
    assert "unknown incident event source" in text and "x" * 100 not in text
