#!/usr/bin/env python3
"""A kazoo contender for dsctl's ZooKeeper lock interoperability tests.

Takes kazoo's Lock (nodes <uuid hex>__lock__<seq>) in a loop and proves exclusion with
the critical-section marker shared with the other contenders (dsctl, Curator): right
after acquiring, the holder creates MARKER with O_CREAT|O_EXCL and deletes it right
before releasing; a failed create means another holder is inside (a violation). Every
holder appends one line to MARKER.history while inside.

kazoo's Lock only counts as contenders the children whose names match its patterns
(`__lock__` by default). dsctl's and Curator's nodes are _c_<uuid>-lock-<seq>, so
kazoo must be given extra_lock_patterns=["-lock-"] (kazoo >= 2.7.1) to wait for them;
--no-foreign-patterns leaves that out, to show that kazoo then ignores them.

Output, one line per event on stdout (flushed) and appended to --out when given:
ready <ms>, enter <ms> <node>, exit <ms> <node>, violation <ms> <what>, timeout <ms>,
done acquired=N violations=V. Exit status: 0 no violation, 3 violations, 4 an acquire
timed out, 2 bad arguments, 1 anything else.
"""
import argparse
import os
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout


def now_ms():
    return int(time.time() * 1000)


def hold(hold_ms, release_file):
    if not release_file:
        time.sleep(hold_ms / 1000.0)
        return
    end = time.monotonic() + hold_ms / 1000.0
    while time.monotonic() < end and not os.path.exists(release_file):
        time.sleep(0.005)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connect", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--marker", required=True)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--hold-ms", type=int, default=10)
    p.add_argument("--gap-ms", type=int, default=0)
    p.add_argument("--wait-ms", type=int, default=30000)
    p.add_argument("--side", default="kazoo")
    p.add_argument("--recipe", choices=["lock", "read", "write"], default="lock",
                   help="kazoo's Lock, ReadLock or WriteLock (all with the same patterns)")
    p.add_argument("--out")
    p.add_argument("--release-file", help="hold until this file exists (at most --hold-ms)")
    p.add_argument("--session-timeout-ms", type=int, default=10000)
    p.add_argument("--no-foreign-patterns", action="store_true",
                   help="leave out extra_lock_patterns (kazoo then ignores dsctl's and Curator's nodes)")
    p.add_argument("--blocking", choices=["yes", "no"], default="yes",
                   help="no: one non-blocking attempt per iteration (for the negative test)")
    a = p.parse_args()

    out_file = open(a.out, "a", buffering=1) if a.out else None

    def emit(line):
        print(line, flush=True)
        if out_file:
            out_file.write(line + "\n")

    zk = KazooClient(hosts=a.connect, timeout=a.session_timeout_ms / 1000.0)
    try:
        zk.start(timeout=15)
    except Exception as e:  # noqa: BLE001 - any start failure is fatal here
        print(f"kazoo: cannot connect to {a.connect} within 15s: {e}", file=sys.stderr)
        return 1
    patterns = () if a.no_foreign_patterns else ("-lock-",)
    acquired = violations = 0
    try:
        emit(f"ready {now_ms()} {a.recipe}")
        for _ in range(a.iterations):
            recipe = {"lock": zk.Lock, "read": zk.ReadLock, "write": zk.WriteLock}[a.recipe]
            lock = recipe(a.path, identifier=a.side, extra_lock_patterns=patterns)
            try:
                if a.blocking == "yes":
                    got = lock.acquire(blocking=True, timeout=a.wait_ms / 1000.0)
                else:
                    got = lock.acquire(blocking=False)
            except LockTimeout:
                got = False
            if not got:
                if a.blocking == "no":
                    emit(f"busy {now_ms()}")
                    time.sleep(a.gap_ms / 1000.0)
                    continue
                emit(f"timeout {now_ms()}")
                emit(f"done acquired={acquired} violations={violations}")
                return 4
            acquired += 1
            node = lock.node
            emit(f"enter {now_ms()} {node}")
            who = f"{a.side} {node}"
            fd = None
            try:
                fd = os.open(a.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.write(fd, (who + "\n").encode())
                os.close(fd)
            except FileExistsError:
                violations += 1
                try:
                    inside = open(a.marker).read().strip()
                except OSError:
                    inside = "(gone)"
                emit(f"violation {now_ms()} {who} found the marker taken by: {inside}")
            with open(a.marker + ".history", "a") as h:
                h.write(who + "\n")
            hold(a.hold_ms, a.release_file)
            if fd is not None:
                os.unlink(a.marker)
            emit(f"exit {now_ms()} {node}")
            lock.release()
            if a.gap_ms:
                time.sleep(a.gap_ms / 1000.0)
    finally:
        zk.stop()
        zk.close()
    emit(f"done acquired={acquired} violations={violations}")
    return 3 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
