"""The access steps of the one write path (`services.write.execute_plan`): validating,
carrying out and reading back ACL bindings, SCRAM users and quotas.

Validation before the first change: Kafka offers validate-only for quotas
(AlterClientQuotas), so the brokers check those; CreateAcls, DeleteAcls and
AlterUserScramCredentials have none, so bindings are checked locally (every field maps
to one of Kafka's enums) and every password is read from where the catalog names it (an
environment variable or a file) before anything is applied. A missing password refuses the
whole plan.

Passwords: read here, at apply time, into local variables only; salted and hashed by the
gateway; never put on an action, a result, a log line or an error message.
"""

import os
from pathlib import Path

from ecap_ops.core.access import ACL_PHASE_BUDGET
from ecap_ops.core.plan import Action, ActionKind
from ecap_ops.errors import EcapOpsError
from ecap_ops.gateway import KafkaGateway

MAX_PASSWORD_BYTES = 4096


class PasswordUnavailable(EcapOpsError):
    """A SCRAM user's password could not be read from where the catalog names it."""


def read_password(source: str, env: dict[str, str] | None = None) -> str:
    """The password behind `env NAME` or `file PATH`. Errors name the source, never a value."""
    env = os.environ if env is None else env
    kind, _, where = (source or "").partition(" ")
    if kind == "env":
        value = env.get(where)
        if not value:
            raise PasswordUnavailable(
                f"environment variable {where} is not set (or empty): set it to the password before applying"
            )
    elif kind == "file":
        path = Path(where).expanduser()
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_PASSWORD_BYTES + 1)
        except OSError as exc:
            raise PasswordUnavailable(
                f"password file {where} cannot be read ({exc.strerror or type(exc).__name__})"
            ) from None
        if len(raw) > MAX_PASSWORD_BYTES:
            raise PasswordUnavailable(
                f"password file {where} is larger than {MAX_PASSWORD_BYTES} bytes"
            )
        try:
            value = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise PasswordUnavailable(f"password file {where} is not UTF-8 text") from None
        if not value:
            raise PasswordUnavailable(f"password file {where} is empty")
    else:
        raise PasswordUnavailable(f"unknown password source {source[:40]!r}")
    return value


def validate_access(gw: KafkaGateway, actions: list[Action]) -> list[str]:
    """Every problem that would stop the plan's access actions, before any change."""
    from ecap_ops.gateway.access import _kafka_acl, alter_quotas

    problems = []
    for a in actions:
        if a.kind in (ActionKind.CREATE_ACLS, ActionKind.DELETE_ACLS):
            for b in a.acls:
                try:
                    _kafka_acl(b).validate()
                except Exception as exc:  # kafka-python raises several types for a bad field
                    problems.append(
                        f"{a.subject}: binding {b.describe()[:120]} is invalid ({type(exc).__name__})"
                    )
        elif a.kind is ActionKind.UPSERT_USER:
            try:
                read_password(a.password_source or "")
            except PasswordUnavailable as exc:
                problems.append(f"SCRAM user {a.user}: {exc}")
    quota = [a for a in actions if a.kind is ActionKind.ALTER_QUOTAS]
    if quota:
        out = alter_quotas(
            gw,
            [(a.quota_entity, [(k, new) for k, _old, new in a.quota_changes]) for a in quota],
            validate_only=True,
        )
        problems += [
            f"quota {', '.join(f'{t}={n}' for t, n in e)}: {err}" for e, err in out.items() if err
        ]
    return problems


def run_access_phase(gw: KafkaGateway, kind: ActionKind, actions: list[Action], record) -> bool:
    """Carry out the actions of one access phase; `record(action, ok, detail)` each; False
    once any failed (the caller then runs nothing further)."""
    from ecap_ops.gateway import access as gw_access

    if kind in (ActionKind.CREATE_ACLS, ActionKind.DELETE_ACLS):
        call = gw_access.create_acls if kind is ActionKind.CREATE_ACLS else gw_access.delete_acls
        verb = "created" if kind is ActionKind.CREATE_ACLS else "deleted"
        # Bindings of several principals go in one request, up to the budget.
        for group in _acl_requests(actions):
            flat = [(a, b) for a in group for b in a.acls]
            try:
                errs = call(gw, [b for _a, b in flat])
            except EcapOpsError as exc:
                for a in group:
                    record(
                        a,
                        False,
                        f"unknown: the request failed ({exc}); it may or may not have been applied",
                    )
                return False
            ok = True
            for a in group:
                mine = [e for (owner, _b), e in zip(flat, errs, strict=True) if owner is a]
                failed = [e for e in mine if e]
                record(
                    a,
                    not failed,
                    f"{len(mine) - len(failed)} binding(s) {verb}"
                    + (f"; {len(failed)} failed: {failed[0]}" if failed else ""),
                )
                ok = ok and not failed
            if not ok:
                return False
        return True
    if kind is ActionKind.UPSERT_USER:
        users = []
        for a in actions:
            try:
                users.append(
                    (a.user, a.mechanism, a.iterations, read_password(a.password_source or ""))
                )
            except PasswordUnavailable as exc:
                record(a, False, f"not done: {exc}")
                return False
        try:
            out = gw_access.upsert_scram_users(gw, users)
        except EcapOpsError as exc:
            for a in actions:
                record(a, False, f"unknown: the request failed ({exc})")
            return False
        finally:
            users.clear()
        ok = True
        for a in actions:
            err = out.get(a.user or "")
            record(
                a, err is None, err or f"{a.mechanism} credential set ({a.iterations} iterations)"
            )
            ok = ok and err is None
        return ok
    try:
        out = gw_access.alter_quotas(
            gw, [(a.quota_entity, [(k, new) for k, _old, new in a.quota_changes]) for a in actions]
        )
    except EcapOpsError as exc:
        for a in actions:
            record(a, False, f"unknown: the request failed ({exc})")
        return False
    ok = True
    for a in actions:
        err = out.get(a.quota_entity)
        record(a, err is None, err or "quotas set")
        ok = ok and err is None
    return ok


def _acl_requests(actions: list[Action]):
    group: list[Action] = []
    used = 0
    for a in actions:
        if group and used + len(a.acls) > ACL_PHASE_BUDGET:
            yield group
            group, used = [], 0
        group.append(a)
        used += len(a.acls)
    if group:
        yield group
