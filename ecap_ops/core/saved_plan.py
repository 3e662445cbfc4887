"""A saved plan (`ecap-ops plan --out FILE`) and the check that it is applied exactly as
reviewed (`create-topics --plan-file FILE`).

The file holds the plan's actions, the acknowledgements it was made with, the catalog's
digest and environment, the cluster id and a fingerprint of the state it was read from,
sealed with a SHA-256 checksum (against corruption) and, when `ECAP_SIGNING_KEY` is set, an
HMAC-SHA256 signature (against editing: anyone can recompute a checksum). Applying it
recomputes the plan and refuses, naming each difference, unless everything matches.
Pure: the key is passed in.
"""

import hashlib
import json
from typing import Any

from ecap_ops.core.integrity import loads_bounded, sign, verify_tag
from ecap_ops.core.plan import Plan
from ecap_ops.errors import PlanStale

FORMAT = "ecap-ops/topic-plan"
FORMAT_VERSION = 1
MAX_PLAN_BYTES = 64 * 1024 * 1024


def _canonical(doc: Any) -> bytes:
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _body(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("checksum", "signature")}


def plan_document(
    plan: Plan, acknowledge_destructive: frozenset[str], key: bytes | None = None
) -> dict:
    """The saved form of a plan: sealed, and signed when a key is given."""
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "cluster_id": plan.cluster_id,
        "env": plan.env,
        "catalog_digest": plan.catalog_digest,
        "fingerprint": plan.fingerprint,
        "acknowledge_destructive": sorted(acknowledge_destructive),
        "plan": json.loads(json.dumps(plan.to_dict(), default=str)),
    }
    doc = {
        **body,
        "checksum": {"algorithm": "sha256", "value": hashlib.sha256(_canonical(body)).hexdigest()},
    }
    if key is not None:
        doc["signature"] = sign(_canonical({k: v for k, v in doc.items()}), key)
    return doc


def serialize_plan(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def parse_plan_file(data: bytes, source: str, key: bytes | None = None) -> dict:
    """Read and verify a saved plan: JSON within bounds, our format, checksum, signature."""
    doc = loads_bounded(data, source, PlanStale, MAX_PLAN_BYTES)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PlanStale(
            f'{source}: not a plan written by `ecap-ops plan --out` (expected "format": "{FORMAT}")'
        )
    if doc.get("format_version") != FORMAT_VERSION:
        raise PlanStale(
            f"{source}: plan format version {str(doc.get('format_version'))[:20]!r} is not one this "
            f"ecap-ops reads ({FORMAT_VERSION}); make the plan again with `ecap-ops plan --out`"
        )
    checksum = doc.get("checksum")
    want = hashlib.sha256(_canonical(_body(doc))).hexdigest()
    if not isinstance(checksum, dict) or checksum.get("value") != want:
        raise PlanStale(
            f"{source}: the checksum does not match its content: the file was edited or damaged after "
            "`ecap-ops plan --out` wrote it; nothing was applied. Make and review the plan again."
        )
    signed = {k: v for k, v in doc.items() if k != "signature"}
    verify_tag(_canonical(signed), doc.get("signature"), key, source, PlanStale)
    for field in ("cluster_id", "env", "catalog_digest", "fingerprint"):
        if not isinstance(doc.get(field), str):
            raise PlanStale(f"{source}: {field} is missing or not text")
    acks = doc.get("acknowledge_destructive")
    if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks):
        raise PlanStale(f"{source}: acknowledge_destructive must be a list of topic names")
    if not isinstance(doc.get("plan"), dict) or not isinstance(doc["plan"].get("actions"), list):
        raise PlanStale(f"{source}: the plan's actions are missing")
    return doc


def _short(value: Any, n: int = 60) -> str:
    text = str(value)
    return text if len(text) <= n else text[:n] + "..."


def differences(saved: dict, plan: Plan, acknowledge_destructive: frozenset[str]) -> list[str]:
    """What differs between a saved plan and the plan computed now (empty: apply it)."""
    out = []
    now = plan_document(plan, acknowledge_destructive)
    labels = {
        "cluster_id": "cluster id",
        "env": "environment (ECAP_ENV)",
        "catalog_digest": "catalog (its digest)",
    }
    for field, label in labels.items():
        if saved.get(field) != now[field]:
            out.append(
                f"{label}: the saved plan has {_short(saved.get(field))}, now {_short(now[field])}"
            )
    if saved.get("fingerprint") != now["fingerprint"]:
        out.append(
            "the cluster changed since the saved plan was made: its topics, partitions, overrides or "
            f"data differ (state {_short(saved.get('fingerprint'), 16)}, now {now['fingerprint']})"
        )
    if sorted(saved.get("acknowledge_destructive", [])) != now["acknowledge_destructive"]:
        out.append(
            f"acknowledgements: the saved plan has {saved.get('acknowledge_destructive') or 'none'}, "
            f"this command gives {now['acknowledge_destructive'] or 'none'}"
        )
    had = saved["plan"].get("actions", [])
    has = now["plan"]["actions"]
    if had != has:
        keys_had = [_action_key(a) for a in had]
        keys_has = [_action_key(a) for a in has]
        gone = [k for k in keys_had if k not in keys_has]
        new = [k for k in keys_has if k not in keys_had]
        detail = []
        if gone:
            detail.append("no longer planned: " + "; ".join(gone[:5]))
        if new:
            detail.append("planned now but not in the file: " + "; ".join(new[:5]))
        if not detail:
            detail.append("the same actions with other values")
        out.append("actions differ: " + " | ".join(detail))
    saved_refusals = saved["plan"].get("refusals", [])
    if saved_refusals != now["plan"]["refusals"]:
        out.append("refusals differ from the saved plan's")
    return out


def _action_key(a: Any) -> str:
    if not isinstance(a, dict):
        return _short(a, 40)
    return f"{_short(a.get('kind'), 20)} {_short(a.get('topic'), 60)}"
