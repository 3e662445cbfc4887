"""Kafka's own command-line tools (kafka-topics, kafka-configs, ...) run from the cached jars.

`run_tool` adds the connection settings the way Kafka's scripts expect them: the bootstrap
address as a flag, and security settings in a private properties file passed with
`--command-config` (every 4.4 client tool takes it), never on the command line.
"""

import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecap_ops.errors import LocalKafkaError
from ecap_ops.localkafka.jars import java_command
from ecap_ops.settings import KafkaSettings

log = logging.getLogger(__name__)

BOOTSTRAP = "--bootstrap-server"
COMMAND_CONFIG = "--command-config"


@dataclass(frozen=True)
class ToolSpec:
    main_class: str
    # Flag that takes the bootstrap address, or None when the tool does not connect that way.
    bootstrap_flag: str | None = BOOTSTRAP
    config_flag: str | None = COMMAND_CONFIG
    # argparse4j tools with per-subcommand options (kafka-cluster) need the flags after it.
    after_subcommand: bool = False
    # User flags that mean "the address is already given".
    address_flags: tuple[str, ...] = ("--bootstrap-server", "--bootstrap-controller")


_T = "org.apache.kafka.tools."
_SPECS: dict[str, ToolSpec] = {
    "kafka-acls": ToolSpec(_T + "AclCommand"),
    "kafka-broker-api-versions": ToolSpec(_T + "BrokerApiVersionsCommand"),
    "kafka-client-metrics": ToolSpec(_T + "ClientMetricsCommand"),
    "kafka-cluster": ToolSpec(
        _T + "ClusterTool",
        after_subcommand=True,
        address_flags=("--bootstrap-server", "--bootstrap-controller", "-b", "-C"),
    ),
    "kafka-configs": ToolSpec(_T + "ConfigCommand"),
    "kafka-console-consumer": ToolSpec(_T + "consumer.ConsoleConsumer"),
    "kafka-console-producer": ToolSpec(_T + "ConsoleProducer"),
    "kafka-console-share-consumer": ToolSpec(_T + "consumer.ConsoleShareConsumer"),
    "kafka-consumer-groups": ToolSpec(_T + "consumer.group.ConsumerGroupCommand"),
    "kafka-consumer-perf-test": ToolSpec(_T + "ConsumerPerformance"),
    "kafka-delegation-tokens": ToolSpec(_T + "DelegationTokenCommand"),
    "kafka-delete-records": ToolSpec(_T + "DeleteRecordsCommand"),
    "kafka-dump-log": ToolSpec(_T + "DumpLogSegments", bootstrap_flag=None, config_flag=None),
    "kafka-e2e-latency": ToolSpec(_T + "EndToEndLatency", bootstrap_flag=None, config_flag=None),
    "kafka-features": ToolSpec(_T + "FeatureCommand"),
    "kafka-get-offsets": ToolSpec(_T + "GetOffsetShell"),
    "kafka-groups": ToolSpec(_T + "GroupsCommand"),
    "kafka-jmx": ToolSpec(_T + "JmxTool", bootstrap_flag=None, config_flag=None),
    "kafka-leader-election": ToolSpec(_T + "LeaderElectionCommand"),
    "kafka-log-dirs": ToolSpec(_T + "LogDirsCommand"),
    "kafka-metadata-quorum": ToolSpec(_T + "MetadataQuorumCommand"),
    "kafka-producer-perf-test": ToolSpec(_T + "ProducerPerformance"),
    "kafka-reassign-partitions": ToolSpec(_T + "reassign.ReassignPartitionsCommand"),
    "kafka-replica-verification": ToolSpec(
        _T + "ReplicaVerificationTool",
        bootstrap_flag="--broker-list",
        config_flag=None,
        address_flags=("--broker-list",),
    ),
    "kafka-share-consumer-perf-test": ToolSpec(_T + "ShareConsumerPerformance"),
    "kafka-share-groups": ToolSpec(_T + "consumer.group.ShareGroupCommand"),
    "kafka-storage": ToolSpec("kafka.tools.StorageTool", bootstrap_flag=None, config_flag=None),
    "kafka-streams-application-reset": ToolSpec(_T + "StreamsResetter"),
    "kafka-streams-groups": ToolSpec(_T + "streams.StreamsGroupCommand"),
    "kafka-topics": ToolSpec(_T + "TopicCommand"),
    "kafka-transactions": ToolSpec(_T + "TransactionsCommand"),
    "kafka-verifiable-consumer": ToolSpec(_T + "VerifiableConsumer"),
    "kafka-verifiable-producer": ToolSpec(_T + "VerifiableProducer"),
}

# Kafka's script name -> main class, as in Kafka 4.4's bin/*.sh.
TOOLS: dict[str, str] = {name: spec.main_class for name, spec in _SPECS.items()}


def tool_spec(tool: str) -> ToolSpec:
    """The spec of a tool named as Kafka's script is (with or without `.sh`)."""
    name = tool.removesuffix(".sh")
    try:
        return _SPECS[name]
    except KeyError:
        raise LocalKafkaError(
            f"unknown Kafka tool {tool!r}; known tools: {', '.join(sorted(TOOLS))}"
        ) from None


def _has_flag(args: Sequence[str], flags: Sequence[str]) -> bool:
    """True when any of `flags` appears in `args`, as `--flag value` or `--flag=value`."""
    return any(a == f or a.startswith(f + "=") for a in args for f in flags)


def _escape_property(value: str) -> str:
    """Escape a value for java.util.Properties.load, which reads ISO-8859-1 with \\ escapes."""
    out = []
    for i, ch in enumerate(value):
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == " " and i == 0:
            out.append("\\ ")
        elif code < 0x20 or code > 0x7E:
            data = ch.encode("utf-16-be")
            for j in range(0, len(data), 2):
                out.append(f"\\u{data[j]:02x}{data[j + 1]:02x}")
        else:
            out.append(ch)
    return "".join(out)


def write_client_properties(props: dict[str, str]) -> Path:
    """Write client properties to a new private (0600) temp file; the caller deletes it."""
    fd, name = tempfile.mkstemp(prefix="ecap-ops-client-", suffix=".properties")
    try:
        os.fchmod(fd, 0o600)
        body = "".join(f"{k}={_escape_property(v)}\n" for k, v in props.items())
        os.write(fd, body.encode("ascii"))
    finally:
        os.close(fd)
    return Path(name)


def tool_command(
    tool: str, args: Sequence[str], settings: KafkaSettings, config_file: Path | None = None
) -> list[str]:
    """The java command line for a tool, with the bootstrap address and config file added."""
    spec = tool_spec(tool)
    args = list(args)
    extra: list[str] = []
    if spec.bootstrap_flag and not _has_flag(args, spec.address_flags):
        extra += [spec.bootstrap_flag, settings.bootstrap_servers]
    if config_file is not None and spec.config_flag:
        extra += [spec.config_flag, str(config_file)]
    if spec.after_subcommand and args and not args[0].startswith("-"):
        args = [args[0], *extra, *args[1:]]
    else:
        args = [*extra, *args]
    return java_command(spec.main_class, args, jvm_opts=("-XX:TieredStopAtLevel=1",))


def _needs_config_file(spec: ToolSpec, args: Sequence[str], settings: KafkaSettings) -> bool:
    """True when security settings must reach the tool through a properties file."""
    if settings.security_protocol.upper() == "PLAINTEXT":
        return False
    if spec.config_flag is None:
        if spec.bootstrap_flag is not None:
            log.warning(
                "%s takes no client config file; it connects without %s",
                spec.main_class,
                settings.security_protocol,
            )
        return False
    # The user's own --command-config wins; two of them would be refused by the tool.
    return not _has_flag(args, (spec.config_flag, "--command-config"))


def run_tool(
    tool: str,
    args: Sequence[str],
    settings: KafkaSettings,
    capture: bool = False,
    timeout: float | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run one of Kafka's own tools against `settings`; never raises for a non-zero exit."""
    spec = tool_spec(tool)
    config_file = None
    if _needs_config_file(spec, args, settings):
        config_file = write_client_properties(settings.java_client_properties())
    try:
        cmd = tool_command(tool, args, settings, config_file)
        log.debug("running %s %s", tool, " ".join(args))
        stdin = None if input is not None or not capture else subprocess.DEVNULL
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if input is not None else stdin,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            text=True,
        )
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise LocalKafkaError(
                settings.redact(
                    f"{tool} did not finish within {timeout:.0f}s; stderr tail:\n"
                    + "\n".join((err or "").splitlines()[-20:])
                )
            ) from None
        except KeyboardInterrupt:
            # The tool got the same Ctrl-C; give it a moment to finish (console tools print
            # a summary), then make sure it is gone.
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            return subprocess.CompletedProcess(cmd, 130, out, err)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    finally:
        if config_file is not None:
            config_file.unlink(missing_ok=True)
