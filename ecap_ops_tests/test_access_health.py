"""What the health check says about access: no authorizer (CRIT in prod), allow.everyone
(CRIT in prod), super users listed, catalog topics without ACL in prod, access drift."""

from ecap_ops.core.health_checks import check_access
from ecap_ops.core.health_model import (
    CRIT,
    OK,
    WARN,
    AccessObservation,
    HealthObservation,
    HealthThresholds,
)


def _obs(env: str, access: AccessObservation | None) -> HealthObservation:
    return HealthObservation("b:1", env, 0, access=access)


def _by_subject(env: str, access: AccessObservation) -> dict[str, str]:
    return {
        f.subject: f.severity for f in check_access(_obs(env, access), HealthThresholds()).findings
    }


def test_no_authorizer_is_critical_in_prod_when_the_catalog_declares_access() -> None:
    none = AccessObservation(authorizer=None, allow_everyone=None, declared=True)
    assert _by_subject("prod", none) == {"authorizer": CRIT}
    assert _by_subject("dev", none) == {"authorizer": OK}
    undeclared = AccessObservation(authorizer=None, allow_everyone=None)
    assert _by_subject("prod", undeclared) == {"authorizer": WARN}  # production needs one
    assert _by_subject("dev", undeclared) == {"authorizer": OK}


def test_allow_everyone_super_users_open_topics_and_drift() -> None:
    a = AccessObservation(
        authorizer="org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        allow_everyone=True,
        super_users=("User:admin",),
        topics_without_acl=("product-updates",),
        drift=("create 2 ACL binding(s) of User:fraud-detector",),
    )
    got = _by_subject("prod", a)
    assert got["allow.everyone.if.no.acl.found"] == CRIT
    assert got["super users"] == OK
    assert got["topics without ACL"] == WARN
    assert got["access drift"] == WARN
    assert "topics without ACL" not in _by_subject("dev", a)
    assert _by_subject("dev", a)["allow.everyone.if.no.acl.found"] == WARN


def test_nothing_read_gives_no_finding() -> None:
    assert check_access(_obs("prod", None), HealthThresholds()).findings == []
