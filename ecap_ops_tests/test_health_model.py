"""Health's vocabulary (core/health_model.py): severities ranked, findings worst first,
the disk's used fraction, the canary's lost messages, the report's exit codes. Pure."""

from ecap_ops.core.health_model import (
    CRIT,
    OK,
    WARN,
    CanaryResult,
    DiskInfo,
    Finding,
    HealthReport,
    worst,
    worst_first,
)


def test_worst_and_worst_first():
    fs = [Finding("a", OK, "s", "m"), Finding("b", CRIT, "s", "m"), Finding("c", WARN, "s", "m")]
    assert worst(f.severity for f in fs) == CRIT and worst([]) == OK
    assert [f.check for f in worst_first(fs)] == ["b", "c", "a"]


def test_the_models_small_rules():
    assert DiskInfo(1, "/d", None, 200, 50).used_fraction == 0.75
    assert DiskInfo(1, "/d", None, 0, 50).used_fraction is None
    assert DiskInfo(1, "/d", None, 100, None).used_fraction is None
    assert CanaryResult("c", 3, 1, None).lost == 2 and CanaryResult("c", 1, 3, None).lost == 0


def test_exit_codes_fail_on_crit_and_on_warn_only_when_strict():
    def report(status):
        return HealthReport(status, "dev", "cid", "b:1", 0, (), {}, {}, {}, {})

    assert [report(s).exit_code() for s in (OK, WARN, CRIT)] == [0, 0, 1]
    assert [report(s).exit_code(strict=True) for s in (OK, WARN, CRIT)] == [0, 1, 1]
