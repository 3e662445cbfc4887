"""Kafka's own command-line tools (kafka-topics, kafka-configs, ...) run from the cached jars.

`run_tool` (captured, for code and tests) and `exec_tool` (in the foreground, for
`ecap-ops kafka-cli`) add the connection settings the way Kafka's scripts expect them: the
bootstrap address as a flag, and security settings in a properties file passed with
`--command-config` (every 4.4 client tool takes it), never on the command line.

That file holds the SASL password, so it has no name on disk: it is an unnamed in-memory
file (memfd) inherited by the tool and read as `/dev/fd/N`, so nothing is left behind
however the command ends, SIGKILL included.
"""

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
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


PROPERTIES_NAME = "ecap-ops-client-properties"


def client_properties_body(props: dict[str, str]) -> bytes:
    """The bytes of a java.util.Properties file holding `props` (ASCII, escaped)."""
    return "".join(f"{k}={_escape_property(v)}\n" for k, v in props.items()).encode("ascii")


def open_client_properties(props: dict[str, str]) -> int:
    """An open, private file descriptor holding client properties, with no name on disk.

    On Linux the file is a memfd: it never appears in any directory, and the kernel frees it
    when the last process holding it exits, however that process ends (SIGKILL included).
    Elsewhere it is a 0600 temp file unlinked before anything is written into it. The tool
    reads it as `/dev/fd/N` (`config_path`); the caller passes the fd to the child with
    `pass_fds` and closes it afterwards.
    """
    body = client_properties_body(props)
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create(PROPERTIES_NAME, os.MFD_CLOEXEC)
        os.fchmod(fd, 0o600)
    else:  # pragma: no cover - not Linux
        fd, name = tempfile.mkstemp(prefix="ecap-ops-client-", suffix=".properties")
        os.unlink(name)
        os.fchmod(fd, 0o600)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def config_path(fd: int) -> str:
    """The path a child process opens to read the inherited descriptor `fd`."""
    return f"/dev/fd/{fd}"


def tool_command(
    tool: str,
    args: Sequence[str],
    settings: KafkaSettings,
    config_file: Path | str | None = None,
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


# Signals `exec_tool` passes on to the tool: Ctrl-C, `kill`, a closed terminal.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the tool when the process that started it
    dies, even by SIGKILL (prctl PR_SET_PDEATHSIG); None where that is not available.
    Only for the single-threaded CLI: running Python between fork and exec is not safe in
    a process with other threads."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


@contextlib.contextmanager
def _tool_config(
    tool: str, args: Sequence[str], settings: KafkaSettings
) -> Iterator[tuple[list[str], tuple[int, ...]]]:
    """The tool's command line and the descriptors to pass it; the properties (if any) live
    in an unnamed file that is closed on the way out."""
    spec = tool_spec(tool)
    fd = None
    if _needs_config_file(spec, args, settings):
        fd = open_client_properties(settings.java_client_properties())
    try:
        cmd = tool_command(tool, args, settings, None if fd is None else config_path(fd))
        yield cmd, (() if fd is None else (fd,))
    finally:
        if fd is not None:
            os.close(fd)


def run_tool(
    tool: str,
    args: Sequence[str],
    settings: KafkaSettings,
    capture: bool = False,
    timeout: float | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run one of Kafka's own tools against `settings`; never raises for a non-zero exit."""
    with _tool_config(tool, args, settings) as (cmd, fds):
        log.debug("running %s %s", tool, " ".join(args))
        stdin = None if input is not None or not capture else subprocess.DEVNULL
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if input is not None else stdin,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            text=True,
            pass_fds=fds,
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


def exec_tool(tool: str, args: Sequence[str], settings: KafkaSettings) -> int:
    """Run a tool in the foreground (the terminal's stdin, stdout and stderr) as
    `ecap-ops kafka-cli` does: SIGINT, SIGTERM and SIGHUP sent to this process are passed on
    to the tool, and the tool's exit code is returned (128 + N when signal N ended it)."""
    with _tool_config(tool, args, settings) as (cmd, fds):
        log.debug("running %s %s", tool, " ".join(args))
        proc: subprocess.Popen | None = None
        pending: list[int] = []

        def forward(signum: int, _frame: object) -> None:
            if proc is None:
                pending.append(signum)
            elif proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signum)

        previous = {}
        try:
            for sig in FORWARDED_SIGNALS:
                try:
                    previous[sig] = signal.signal(sig, forward)
                except ValueError:  # not the main thread: nothing to forward from
                    break
            proc = subprocess.Popen(cmd, pass_fds=fds, preexec_fn=_die_with_parent())
            for signum in pending:
                forward(signum, None)
            rc = proc.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if proc is not None and proc.poll() is None:  # only on an error of our own
                proc.kill()
                proc.wait()
    return rc if rc >= 0 else 128 - rc
