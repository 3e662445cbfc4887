"""Apache Kafka's jars: fetched once with Maven into a cache folder, and the `java` command line.

The pom beside this module names the artifacts; `fetch_jars` copies them with their runtime
dependencies into `<cache>/kafka/<version>/lib`, which is complete only when its marker file
exists (written last, before an atomic rename), so an interrupted fetch is never mistaken
for a good one.
"""

import collections
import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ecap_ops.errors import LocalKafkaError

log = logging.getLogger(__name__)

# Keep equal to <kafka.version> in pom.xml (a test checks).
KAFKA_VERSION = "4.4.0"

PACKAGE_DIR = Path(__file__).resolve().parent
POM_PATH = PACKAGE_DIR / "pom.xml"
# MirrorMaker 2's own pom and version (see mirror-pom.xml for why it is pinned apart from the
# broker's: connect-mirror is not on Maven Central at 4.4.0). Keep equal to <mirror.version>.
MIRROR_POM_PATH = PACKAGE_DIR / "mirror-pom.xml"
MIRROR_VERSION = "4.3.1"
MIRROR_LOG_CONFIG = PACKAGE_DIR / "mirror-log4j2.properties"
MIRROR_REQUIRED_JARS = (
    f"connect-mirror-{MIRROR_VERSION}.jar",
    f"connect-mirror-client-{MIRROR_VERSION}.jar",
    f"connect-runtime-{MIRROR_VERSION}.jar",
    f"kafka-clients-{MIRROR_VERSION}.jar",
    "log4j-slf4j-impl-",
)
BROKER_LOG_CONFIG = PACKAGE_DIR / "log4j2.yaml"
TOOLS_LOG_CONFIG = PACKAGE_DIR / "tools-log4j2.yaml"

MARKER = ".complete.json"
# Maven colours some lines even in batch mode.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
FETCH_TIMEOUT_S = 900.0
LOCK_TIMEOUT_S = FETCH_TIMEOUT_S + 60.0
# Without these the broker or the tools cannot run; checked after every fetch.
REQUIRED_JARS = (
    f"kafka_2.13-{KAFKA_VERSION}.jar",
    f"kafka-tools-{KAFKA_VERSION}.jar",
    f"kafka-clients-{KAFKA_VERSION}.jar",
    "log4j-slf4j-impl-",
    "log4j-core-",
)
# Lean flags for a 2-core machine: serial GC has no helper threads to compete with the broker.
BASE_JVM_OPTS = ("-XX:+UseSerialGC", "-Djava.awt.headless=true", "-XX:+ExitOnOutOfMemoryError")


def cache_dir() -> Path:
    """Where fetched jars live: $ECAP_OPS_CACHE, else <checkout>/.cache, else ~/.cache/ecap-ops."""
    env = os.environ.get("ECAP_OPS_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    project_root = PACKAGE_DIR.parent.parent
    if (project_root / "pyproject.toml").is_file():
        return project_root / ".cache"
    return Path.home() / ".cache" / "ecap-ops"


def kafka_home() -> Path:
    """The cache folder of this Kafka version (holds `lib/`)."""
    return cache_dir() / "kafka" / KAFKA_VERSION


def _is_complete(lib: Path, version: str = KAFKA_VERSION) -> bool:
    """True when `lib` holds a finished fetch of `version`: the marker and every jar it lists."""
    try:
        marker = json.loads((lib / MARKER).read_text())
    except (OSError, ValueError):
        return False
    jars = marker.get("jars") or []
    return (
        marker.get("version") == version and bool(jars) and all((lib / j).is_file() for j in jars)
    )


def find_executable(name: str) -> str:
    """Path of `java` (honouring $JAVA_HOME) or `mvn`, or a LocalKafkaError saying what to install."""
    if name == "java" and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    hint = {
        "java": "install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
        "mvn": "install Apache Maven (e.g. apt-get install maven)",
    }.get(name, f"install {name}")
    raise LocalKafkaError(f"`{name}` was not found on PATH: {hint}.")


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive advisory lock on `path`, waited for at most `timeout` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LocalKafkaError(
                        f"another ecap-ops process holds {path} for more than {timeout:.0f}s"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _run_maven(cmd: list[str], quiet: bool) -> tuple[int, str]:
    """Run Maven with a bounded wait; return its exit code and the tail of its output."""
    tail: collections.deque[str] = collections.deque(maxlen=40)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    )
    timer = threading.Timer(FETCH_TIMEOUT_S, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(ANSI_ESCAPE.sub("", line).rstrip())
            if not quiet:
                # Progress goes to stderr: stdout belongs to the command's real output.
                sys.stderr.write(line)
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc < 0:
        tail.append(f"(mvn killed after {FETCH_TIMEOUT_S:.0f}s)")
    return rc, "\n".join(tail)


def fetch_jars(quiet: bool = True) -> Path:
    """Copy Kafka's jars into the cache with Maven unless already there; return the lib folder."""
    lib = _copy_dependencies(
        kafka_home(), POM_PATH, KAFKA_VERSION, REQUIRED_JARS, f"Apache Kafka {KAFKA_VERSION}", quiet
    )
    log.info("Apache Kafka %s jars ready in %s", KAFKA_VERSION, lib)
    return lib


def _copy_dependencies(
    home: Path, pom: Path, version: str, required: Sequence[str], what: str, quiet: bool
) -> Path:
    """`pom`'s runtime dependencies copied with Maven into `home/lib`, once: complete only
    with its marker (the version and every jar), written last before an atomic rename, and
    one process at a time (a file lock). Returns `home/lib`."""
    lib = home / "lib"
    if _is_complete(lib, version):
        return lib
    find_executable("java")
    mvn = find_executable("mvn")
    with file_lock(home / ".fetch.lock", LOCK_TIMEOUT_S):
        if _is_complete(lib, version):  # another process finished it while we waited
            return lib
        log.info("fetching %s jars with Maven into %s", what, lib)
        tmp = Path(tempfile.mkdtemp(prefix="lib.tmp-", dir=home))
        try:
            cmd = [
                mvn,
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={tmp}",
            ]
            if quiet:
                cmd.insert(1, "-q")
            rc, tail = _run_maven(cmd, quiet)
            if rc != 0:
                raise LocalKafkaError(
                    f"Maven could not fetch {what} (exit {rc}); "
                    f"check network access to Maven Central. Last lines of its output:\n{tail}"
                )
            jars = sorted(p.name for p in tmp.glob("*.jar"))
            missing = [r for r in required if not any(j.startswith(r) for j in jars)]
            if missing:
                raise LocalKafkaError(
                    f"Maven finished but these {what} jars are missing from the copy: "
                    f"{', '.join(missing)}"
                )
            (tmp / MARKER).write_text(json.dumps({"version": version, "jars": jars}, indent=1))
            if lib.exists():  # an incomplete leftover from an older, interrupted layout
                shutil.rmtree(lib)
            os.rename(tmp, lib)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return lib


def lib_dir() -> Path:
    """The folder of Kafka's jars, fetching them first if needed."""
    return fetch_jars()


def java_command(
    main_class: str,
    args: Sequence[str],
    heap: str = "256m",
    log_config: Path | str | None = None,
    jvm_opts: Sequence[str] = (),
) -> list[str]:
    """The command line that runs `main_class` from Kafka's jars (tools log config by default)."""
    java = find_executable("java")
    config = Path(log_config) if log_config is not None else TOOLS_LOG_CONFIG
    return [
        java,
        f"-Xmx{heap}",
        *BASE_JVM_OPTS,
        f"-Dlog4j2.configurationFile={config}",
        *jvm_opts,
        "-cp",
        str(lib_dir() / "*"),
        main_class,
        *args,
    ]


# Signals a node or MirrorMaker is stopped with (`LocalCluster.stop`, `ecap-ops broker stop`,
# Ctrl-C on a foreground tool).
STOP_SIGNALS = "TERM,INT,HUP"


@functools.cache
def _env_resets_signals() -> str | None:
    """GNU env's path when it can put signals back to their default before it execs
    (`--default-signal`, coreutils 8.31+), else None."""
    env = shutil.which("env")
    if env is None:
        return None
    try:
        probe = subprocess.run(
            [env, f"--default-signal={STOP_SIGNALS}", "true"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return env if probe.returncode == 0 else None


def stoppable(cmd: list[str]) -> list[str]:
    """`cmd` started with SIGTERM, SIGINT and SIGHUP at their defaults, whatever the process
    that starts it ignores. An ignored signal stays ignored across exec, and a JVM started
    that way never installs its shutdown handler: every stop then waits out its whole grace
    and ends in SIGKILL (an unclean shutdown, logs recovered at the next start). It happens
    to a broker started from a process where SIGINT is ignored (a background job without job
    control) after a Dagster run in that process, which copies SIGINT's handler onto SIGTERM.
    Without GNU env the command is unchanged."""
    env = _env_resets_signals()
    return [env, f"--default-signal={STOP_SIGNALS}", *cmd] if env else list(cmd)


def fetch_streams_jar(quiet: bool = True) -> Path:
    """Kafka Streams' jar at the broker's version (`org.apache.kafka:kafka-streams`), fetched
    with Maven once into `<cache>/kafka/<version>/streams/`; return its path. Its other
    runtime needs (kafka-clients, slf4j, log4j) are already in `lib_dir()`; a stateless
    topology needs nothing more (RocksDB is loaded only for persistent state stores)."""
    home = kafka_home()
    folder = home / "streams"
    jar = folder / f"kafka-streams-{KAFKA_VERSION}.jar"
    if jar.is_file():
        return jar
    mvn = find_executable("mvn")
    with file_lock(home / ".fetch-streams.lock", LOCK_TIMEOUT_S):
        if jar.is_file():
            return jar
        tmp = Path(tempfile.mkdtemp(prefix="streams.tmp-", dir=home))
        try:
            cmd = [
                mvn,
                "-B",
                "-Dstyle.color=never",
                "dependency:copy",
                f"-Dartifact=org.apache.kafka:kafka-streams:{KAFKA_VERSION}",
                f"-DoutputDirectory={tmp}",
            ]
            if quiet:
                cmd.insert(1, "-q")
            rc, tail = _run_maven(cmd, quiet)
            fetched = tmp / jar.name
            if rc != 0 or not fetched.is_file():
                raise LocalKafkaError(
                    f"Maven could not fetch kafka-streams {KAFKA_VERSION} (exit {rc}); "
                    f"check network access to Maven Central. Last lines of its output:\n{tail}"
                )
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(fetched, jar)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return jar


def mirror_home() -> Path:
    """The cache folder of MirrorMaker 2's jars (holds `lib/`)."""
    return cache_dir() / "kafka" / f"mirror-{MIRROR_VERSION}"


def fetch_mirror_jars(quiet: bool = True) -> Path:
    """MirrorMaker 2 (connect-mirror, connect-mirror-client, connect-runtime and their
    runtime dependencies, all at MIRROR_VERSION) copied with Maven once into
    `<cache>/kafka/mirror-<version>/lib`; return that folder. Complete only with its marker,
    written last before an atomic rename, like the broker's jars."""
    return _copy_dependencies(
        mirror_home(),
        MIRROR_POM_PATH,
        MIRROR_VERSION,
        MIRROR_REQUIRED_JARS,
        f"MirrorMaker 2 (connect-mirror {MIRROR_VERSION})",
        quiet,
    )


def mirror_java_command(
    args: Sequence[str], heap: str = "384m", jvm_opts: Sequence[str] = ()
) -> list[str]:
    """The command line of MirrorMaker 2 in dedicated mode, from its own jars."""
    java = find_executable("java")
    return [
        java,
        f"-Xmx{heap}",
        *BASE_JVM_OPTS,
        "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={MIRROR_LOG_CONFIG}",
        *jvm_opts,
        "-cp",
        str(fetch_mirror_jars() / "*"),
        "org.apache.kafka.connect.mirror.MirrorMaker",
        *args,
    ]
