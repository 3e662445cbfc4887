"""Hostile catalogs against the real broker (hypothesis): whatever the document, the CLI
either applies a valid catalog or refuses with a clear message, no traceback, and the
cluster left exactly as it was."""

import uuid

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap_ops.catalog import default_catalog_path
from ecap_ops_tests.test_write_path import fingerprint

pytestmark = pytest.mark.kafka

BASE = yaml.safe_load(default_catalog_path().read_text())
SCALARS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=30)
    | st.sampled_from(["yes", "~", "0777", "1e400", "-1", "7d", "0s", "infinite", "NaN", "10GiB"])
    | st.none()
    | st.booleans()
)
FIELDS = ["partitions", "retention", "compression", "max_message_size", "cleanup_policy", "lag"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    topic=st.sampled_from(sorted(BASE["topics"])),
    field=st.sampled_from(FIELDS),
    value=SCALARS,
    as_text=st.booleans(),
    junk=st.text(max_size=40),
)
def test_refused_catalogs_change_nothing(
    kafka_bootstrap, kafka_settings, tmp_path, topic, field, value, as_text, junk
):
    from click.testing import CliRunner

    from ecap_ops.cli import main

    prefix = f"hyp-{uuid.uuid4().hex[:8]}"
    data = yaml.safe_load(default_catalog_path().read_text())
    data["environments"]["dev"]["name_prefix"] = prefix + "."
    data["topics"][topic][field] = value
    text = yaml.safe_dump(data, sort_keys=False)
    if as_text:
        text = text.replace(f"  {topic}:", f"  {topic}:{junk}", 1)
    path = tmp_path / f"{prefix}.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    res = CliRunner().invoke(
        main,
        ["-b", kafka_bootstrap, "--catalog", str(path), "create-topics"],
        catch_exceptions=True,
    )
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if res.exit_code != 0:
        assert res.exit_code == 1 and "error:" in res.output
        assert fingerprint(kafka_settings, prefix + ".") == {}
