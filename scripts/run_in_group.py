#!/usr/bin/env python3
"""Run a long-lived command (`dagster dev` under `make run`) so that Ctrl-C stops it and
everything it started, and nothing is left behind.

The command runs in its own session (process group). The first Ctrl-C (SIGINT), or a
SIGTERM or SIGHUP sent to this script, is passed on to the whole group as SIGINT, which
`dagster dev` answers by shutting its webserver, daemon and code servers down. A second
Ctrl-C sends SIGTERM, a third SIGKILL; after --grace seconds whatever is left is killed.
This script is a child subreaper, so processes whose parent died are adopted here, and
it returns only when the group and every such orphan are gone.

    run_in_group.py [--cwd DIR] [--grace S] [--ready-url URL] [--ready-message TEXT]
                    [--stopped-message TEXT] -- COMMAND [ARGS...]

Exit status: the command's own when it ended by itself (128 + N if signal N ended it);
after Ctrl-C, SIGTERM or SIGHUP, 0 when everything stopped within --grace, else 1.
Standard library only.
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

PR_SET_CHILD_SUBREAPER = 36
FORWARD = {1: signal.SIGINT, 2: signal.SIGTERM}


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux); False where the kernel has no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def adopted_children() -> list[int]:
    """Processes whose parent is this script (orphans it adopted as subreaper)."""
    me = os.getpid()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z" and int(fields[1]) == me:
            found.append(int(entry))
    return found


def reap() -> dict[int, int]:
    """Collect every finished child (ours or adopted); {pid: wait status}."""
    done = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done[pid] = status


def signal_all(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in adopted_children():
        if pid == pgid:
            continue  # the command itself: killpg above reached it
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def announce_when_ready(url: str, message: str, stop: threading.Event) -> None:
    probe = url.rstrip("/") + "/server_info"
    while not stop.is_set():
        try:
            with urllib.request.urlopen(probe, timeout=2) as resp:  # noqa: S310 - loopback URL
                if resp.status == 200:
                    print(message, file=sys.stderr, flush=True)
                    return
        except OSError:
            pass
        stop.wait(1.0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="run_in_group.py",
        description="Run a command in its own process group; Ctrl-C stops all of it.",
    )
    p.add_argument("--cwd", help="Run the command in this directory.")
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="Seconds the command gets to stop after Ctrl-C before it is killed (default 30).",
    )
    p.add_argument("--ready-url", help="Print --ready-message once URL/server_info answers.")
    p.add_argument("--ready-message", default="ready")
    p.add_argument("--stopped-message", help="Printed once everything has stopped.")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        p.error("no command given (put it after --)")
    if not args.grace > 0:
        p.error(f"--grace must be a positive number of seconds, got {args.grace}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    become_subreaper()
    try:
        child = subprocess.Popen(args.command, cwd=args.cwd, start_new_session=True)
    except OSError as exc:
        print(f"run_in_group.py: cannot start {args.command[0]}: {exc}", file=sys.stderr)
        return 127
    pgid = child.pid
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        n = len(received)
        if n == 1:
            print(
                "\nstopping (Ctrl-C again to hurry it up)...",
                file=sys.stderr,
                flush=True,
            )
        signal_all(pgid, FORWARD.get(n, signal.SIGKILL))

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    stop_probe = threading.Event()
    if args.ready_url:
        threading.Thread(
            target=announce_when_ready,
            args=(args.ready_url, args.ready_message, stop_probe),
            daemon=True,
        ).start()

    status: int | None = None
    deadline: float | None = None
    killed = False
    while True:
        finished = reap()
        if child.pid in finished:
            status = finished[child.pid]
            child.returncode = os.waitstatus_to_exitcode(status)
        if status is not None and deadline is None:
            # Stopped by a signal we passed on, or it ended by itself: either way the
            # rest of its group and any orphan get the same grace, then SIGKILL.
            stop_probe.set()
            if not received:
                signal_all(pgid, signal.SIGTERM)
            deadline = time.monotonic() + args.grace
        elif received and deadline is None:
            stop_probe.set()
            deadline = time.monotonic() + args.grace
        if status is not None and not group_alive(pgid) and not adopted_children():
            break
        if killed:
            # Orphans adopted after the first SIGKILL (their parent just died) get theirs.
            signal_all(pgid, signal.SIGKILL)
            if time.monotonic() > deadline + 10:
                print(
                    "some processes did not die after SIGKILL; giving up on them", file=sys.stderr
                )
                break
        if deadline is not None and time.monotonic() > deadline and not killed:
            print(
                f"still running {args.grace:.0f} s after being asked to stop: killing what is left",
                file=sys.stderr,
                flush=True,
            )
            signal_all(pgid, signal.SIGKILL)
            killed = True
        time.sleep(0.1)
    reap()
    if args.stopped_message:
        print(args.stopped_message, file=sys.stderr, flush=True)
    if received:
        # A stop someone asked for is a success (make then prints no "Error 130");
        # having to kill what did not stop is not.
        return 1 if killed else 0
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


if __name__ == "__main__":
    sys.exit(main())
