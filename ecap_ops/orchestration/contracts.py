"""What flows through the topics, as checks on the topic assets: `schema_conformance`,
`key_discipline`, `partition_balance`, `volume_in_band` and `freshness` (`core/contracts.py`),
from a bounded sample of every partition's newest records, read without a consumer group.

- The job `topic_contracts` (schedule `topic_contracts_schedule`, every 5 minutes) samples
  every catalog topic, records the five checks of each topic asset, an observation of each
  topic asset with its records per hour, skew and failing share (Metadata > Plots: volume and
  skew over time), and materializes `ecap_ops/topic_contracts` with the end offsets it
  observed (read back by the next run: volume and freshness come from end offsets over time)
  and each topic's incident.
- A failing topic opens an incident through the one incident model (one per topic; the
  worst failed check's level, by the contract's `severity` or the environment's default:
  in prod a silent `transactions` is a critical page). `topic_contracts_incident_sensor`
  notifies each event with one run of `notify_topic_contracts` (run key
  `<incident id>:<event>`).
- The checks can also run from the asset page (`kafka_topic_contract_checks`), judged with
  the end offsets the job last recorded.
"""

import time

import dagster as dg
from pydantic import Field

from ecap_ops.catalog.contracts import CHECKS, contracts_of
from ecap_ops.catalog.model import Catalog
from ecap_ops.orchestration.alerts import EVENTS_METADATA, build_incident_sensor, notify_job
from ecap_ops.orchestration.common import as_failure, md_table
from ecap_ops.orchestration.resources import KafkaResource
from ecap_ops.orchestration.topics import topic_key

STATE_KEY = dg.AssetKey(["ecap_ops", "topic_contracts"])
STATE_METADATA = "contracts_state"


class ContractsConfig(dg.Config):
    """How much each run reads per topic."""

    sample_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Record bytes (keys and values) read per topic at most.",
    )
    sample_max_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Seconds spent reading each topic at most."
    )


def _descriptions(catalog: Catalog, spec) -> dict[str, str]:
    c = contracts_of(catalog).get(spec.key)
    from ecap_ops.catalog.units import format_seconds

    schema = f"its JSON Schema ({c.schema_source})" if c.schema is not None else "JSON"
    limit = format_seconds(c.freshness_s) if c.freshness_s else "none"
    vol = spec.expected_volume
    band = f"{vol.min_per_hour:,}-{vol.max_per_hour:,}/hour" if vol else "no band declared"
    return {
        "schema_conformance": f"The newest records of every partition of `{spec.name}` are JSON matching {schema}, no larger than max_record_bytes; failures listed with partition and offset.",
        "key_discipline": f"Every sampled record of `{spec.name}` has a key equal to its value's `{spec.partition_key}` field.",
        "partition_balance": f"Records per partition of `{spec.name}` over the window: busiest / mean at most {c.max_skew:g}; the hottest keys listed.",
        "volume_in_band": f"Records per hour written to `{spec.name}`, from its end offsets over {format_seconds(c.volume_window_s)}, within the expected {band}.",
        "freshness": f"`{spec.name}`'s end offsets moved within the freshness limit ({limit}), as observed by ecap-ops; the newest record's producer timestamp is shown, not trusted alone.",
    }


def _metadata_value(kind: str, value) -> dg.MetadataValue:
    if kind == "table":
        headers, rows = value
        return dg.MetadataValue.md(md_table(headers, rows) if rows else "none")
    return getattr(dg.MetadataValue, kind)(value)


def _fields(result, catalog: Catalog) -> dict:
    return dict(
        asset_key=topic_key(catalog.get(result.topic)),
        check_name=result.check,
        passed=result.passed,
        severity=dg.AssetCheckSeverity[result.severity],
        description=result.description,
        metadata={
            "level": dg.MetadataValue.text(result.level),
            "judged": dg.MetadataValue.bool(result.judged),
            **{k: _metadata_value(kind, v) for k, (kind, v) in result.metadata.items()},
        },
    )


def _missing_results(catalog: Catalog, missing):
    from ecap_ops.core.contracts import ContractResult

    for name in missing:
        for check in CHECKS:
            yield ContractResult(
                name,
                check,
                False,
                "WARN",
                f"{name} does not exist on the cluster (provision it: provision_topics)",
                judged=False,
            )


def read_state(instance: dg.DagsterInstance) -> tuple[dict | None, str | None]:
    """The history and incidents the latest run recorded; never raises."""
    try:
        records = instance.fetch_materializations(STATE_KEY, limit=1).records
    except Exception as exc:  # storage trouble must not stop the checks
        return None, f"could not read {STATE_KEY.to_user_string()}: {type(exc).__name__}"
    if not records:
        return None, None
    event = records[0].asset_materialization
    entry = event.metadata.get(STATE_METADATA) if event is not None else None
    if entry is None or not isinstance(entry.value, dict):
        return None, f"the latest {STATE_KEY.to_user_string()} has no readable {STATE_METADATA}"
    return entry.value, None


def _topic_observation(catalog: Catalog, name: str, checks: dict) -> dg.AssetObservation:
    """Figures plotted over time on the topic asset's page."""
    meta: dict = {}
    vol = checks.get("volume_in_band")
    if vol is not None and "records_per_hour" in vol.metadata:
        meta["records_per_hour"] = dg.MetadataValue.float(vol.metadata["records_per_hour"][1])
    bal = checks.get("partition_balance")
    if bal is not None:
        meta["partition_skew"] = dg.MetadataValue.float(float(bal.metadata["skew"][1]))
    sc = checks.get("schema_conformance")
    if sc is not None:
        meta["schema_failing_share"] = dg.MetadataValue.float(
            float(sc.metadata["failing_share"][1])
        )
    fr = checks.get("freshness")
    if fr is not None:
        meta["silent_seconds"] = dg.MetadataValue.float(float(fr.metadata["silent_seconds"][1]))
    meta["contract_checks_failed"] = dg.MetadataValue.int(
        sum(1 for r in checks.values() if not r.passed)
    )
    return dg.AssetObservation(asset_key=topic_key(catalog.get(name)), metadata=meta)


def run_contract_checks(context, catalog: Catalog, kafka: KafkaResource, config, names=None):
    """Sample, judge, and return (report, results incl. missing topics, stored state)."""
    from ecap_ops.services.contracts import check_contracts

    stored, why = read_state(context.instance)
    if why:
        context.log.warning(f"contract state: {why}; starting afresh")
    history = (stored or {}).get("history")
    with as_failure("checking the topic contracts"), kafka.gateway() as gw:
        report = check_contracts(
            gw,
            catalog,
            history,
            names,
            max_bytes=config.sample_max_bytes,
            max_seconds=config.sample_max_seconds,
        )
    results = list(report.results) + list(_missing_results(catalog, report.missing))
    return report, results, stored


def build_contract_checks(catalog: Catalog) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(
            name=check,
            asset=topic_key(spec),
            description=_descriptions(catalog, spec)[check],
            blocking=False,
        )
        for spec in catalog.topics
        for check in CHECKS
    ]
    by_key = {topic_key(s).to_user_string(): s.name for s in catalog.topics}

    @dg.multi_asset_check(
        name="kafka_topic_contract_checks",
        specs=specs,
        can_subset=True,
        description="What flows through the topics, against their contracts: a bounded sample of every partition's newest records (no consumer group) and end offsets over time, as the job topic_contracts last recorded them.",
    )
    def kafka_topic_contract_checks(
        context: dg.AssetCheckExecutionContext, kafka: KafkaResource, config: ContractsConfig
    ):
        selected = context.selected_asset_check_keys
        names = sorted({by_key[k.asset_key.to_user_string()] for k in selected})
        wanted = {(by_key[k.asset_key.to_user_string()], k.name) for k in selected}
        _report, results, _stored = run_contract_checks(context, catalog, kafka, config, names)
        for r in results:
            if (r.topic, r.check) in wanted:
                yield dg.AssetCheckResult(**_fields(r, catalog))

    return kafka_topic_contract_checks


def build_defs(catalog: Catalog) -> dg.Definitions:
    from ecap_ops.orchestration.health import schedule_default_status

    @dg.op(
        name="topic_contracts_report",
        description="Sample every catalog topic's newest records (no consumer group, byte and time capped), judge the five contract checks of each topic asset, record volume and skew on the topic assets, and the contract incidents' events for topic_contracts_incident_sensor.",
        out=dg.Out(dict, description="Failed checks per topic."),
    )
    def topic_contracts_report(
        context: dg.OpExecutionContext, config: ContractsConfig, kafka: KafkaResource
    ):
        from ecap_ops.core.contracts import decide

        started = time.monotonic()
        report, results, stored = run_contract_checks(context, catalog, kafka, config)
        by_topic: dict[str, dict] = {}
        for r in results:
            by_topic.setdefault(r.topic, {})[r.check] = r
            context.log_event(dg.AssetCheckEvaluation(**_fields(r, catalog)))
        for name, checks in by_topic.items():
            if name not in report.missing:
                context.log_event(_topic_observation(catalog, name, checks))
        decision = decide((stored or {}).get("incidents"), report.results, report.now)
        for note in decision.notes:
            context.log.warning(note)
        for e in decision.events:
            context.log.info(
                f"contract incident {e.incident_id} {e.event_name} ({e.level}): recorded for "
                f"topic_contracts_incident_sensor (run key {e.run_key})"
            )
        failed = {
            n: sorted(c for c, r in checks.items() if not r.passed)
            for n, checks in by_topic.items()
        }
        rows = [
            [r.topic, r.check, "pass" if r.passed else r.level, r.description]
            for r in results
            if not r.passed
        ]
        from ecap_ops.orchestration.alerts import events_metadata

        state = {"history": report.history, "incidents": decision.state}
        open_incidents = sorted(decision.state.get("incidents", {}))
        context.log_event(
            dg.AssetMaterialization(
                asset_key=STATE_KEY,
                description=f"{sum(map(len, failed.values()))} failed check(s) on {len(failed)} topic(s)",
                metadata={
                    "failed_checks": dg.MetadataValue.md(
                        md_table(["topic", "check", "level", "finding"], rows) if rows else "none"
                    ),
                    "open_incidents": dg.MetadataValue.text(", ".join(open_incidents) or "none"),
                    "samples": dg.MetadataValue.json(report.samples),
                    "seconds": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
                    EVENTS_METADATA: events_metadata(decision.events),
                    # For the next run (read back by read_state), not for people: last.
                    STATE_METADATA: dg.MetadataValue.json(state),
                },
            )
        )
        return dg.Output(
            {n: c for n, c in failed.items() if c},
            metadata={"failed": dg.MetadataValue.json({n: c for n, c in failed.items() if c})},
        )

    @dg.job(
        name="topic_contracts",
        description="What flows through the topics: sample every catalog topic's newest records (no consumer group) and judge schema conformance, key discipline, partition balance, volume in band and freshness on each topic asset; record volume and skew for plots and the contract incidents' events, which topic_contracts_incident_sensor notifies through notify_topic_contracts.",
        tags={"ecap_ops/area": "contracts"},
    )
    def topic_contracts():
        topic_contracts_report()

    schedule = dg.ScheduleDefinition(
        name="topic_contracts_schedule",
        job=topic_contracts,
        cron_schedule="*/5 * * * *",
        default_status=schedule_default_status(),
        description="The topic contract checks every 5 minutes: volume and freshness are judged from the end offsets these runs observe.",
    )
    state_asset = dg.AssetSpec(
        STATE_KEY,
        group_name="contracts",
        description="What the job topic_contracts found: the failed contract checks, open incidents, what the samples cost; the last metadata entry, contracts_state, is the end offsets observed over time and the open incidents, as the next run reads them back.",
        kinds={"kafka"},
    )
    notify = notify_job(
        "notify_topic_contracts",
        "Notify one topic contract incident event (open, escalate, remind-N, resolve) of the job topic_contracts. Launched by topic_contracts_incident_sensor with a run key per event.",
        "contracts",
    )
    sensor = build_incident_sensor(
        "topic_contracts_incident_sensor",
        STATE_KEY,
        notify,
        "Every 30 s (ECAP_INCIDENT_SENSOR_INTERVAL): the contract incident events that runs of topic_contracts recorded on ecap_ops/topic_contracts since the last tick, each notified by one run of notify_topic_contracts (run key <incident id>:<event>: never twice).",
    )
    return dg.Definitions(
        asset_checks=[build_contract_checks(catalog)],
        jobs=[topic_contracts, notify],
        schedules=[schedule],
        sensors=[sensor],
        assets=[state_asset],
    )
