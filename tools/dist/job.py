"""The processes of one parameter-server job: start them, relay their output, watch, stop.

A job is a scheduler, servers and workers that ps-lite connects to one another. When one of
them fails, the others do not notice: they wait for it forever. So the job is watched here
as a whole. The first process that exits with an error or is killed ends the job: every
other process gets SIGTERM, then SIGKILL, each in its own process group (so whatever a
process started goes with it). A job whose processes all stay silent for `stall_timeout`
seconds is ended the same way: on MXNet 1.9.1 a worker waits without end for a server that
stopped answering or for a scheduler it cannot reach, and ps-lite's heartbeats change
nothing about that.
"""
import os
import re
import signal
import sys
import threading
import time

GRACE_S = 5      # between SIGTERM and SIGKILL
FINISH_S = 30    # servers and scheduler leave this long after the last worker ends
POLL_S = 0.2
RANK = re.compile(rb'Node\[(\d+)\] ')  # the workers' log prefix (common/logs.py)


class Member:
    """One process of the job: its role, its place among its role, and its Popen."""

    def __init__(self, role, index, count, proc, host=None, node=None):
        self.role, self.index, self.count, self.proc, self.host = role, index, count, proc, host
        self.node = node        # the machine it runs on, when not this one's launcher's
        self.rank = None        # a worker's rank, once its output shows it
        self.error_line = None  # its own one-line `error: ...`, if it printed one

    def name(self):
        if self.role == 'worker' and self.rank is not None:
            where = 'worker rank %d' % self.rank
        elif self.role == 'scheduler':
            where = 'the scheduler'
        elif self.role == 'worker':
            where = 'worker process %d of %d (rank not known yet)' % (self.index + 1,
                                                                     self.count)
        else:
            where = '%s %d of %d' % (self.role, self.index + 1, self.count)
        if self.host:
            return '%s (pid %d via ssh to %s)' % (where, self.proc.pid, self.host)
        return '%s (pid %d%s)' % (where, self.proc.pid, ' on ' + self.node if self.node else '')


def describe_exit(member, code):
    """`exited with code 2` / `was killed by SIGKILL`, from the Popen status."""
    if code < 0:
        return 'was killed by %s' % signal.Signals(-code).name
    if member.host and code > 128 and code - 128 in signal.valid_signals():
        return 'was killed by %s on %s' % (signal.Signals(code - 128).name, member.host)
    if member.host and code == 255:
        return 'lost its ssh connection (ssh exit code 255)'
    return 'exited with code %d' % code


class Job:
    """Members are added in start order; watch() returns how the job ended."""

    def __init__(self, stall_timeout):
        self.members = []
        self.stall_timeout = stall_timeout
        self.last_output = time.monotonic()
        self._print_lock = threading.Lock()
        self._relays = []

    def add(self, member):
        self.members.append(member)
        for stream, sink in ((member.proc.stdout, sys.stdout), (member.proc.stderr, sys.stderr)):
            relay = threading.Thread(target=self._relay, args=(member, stream, sink),
                                     daemon=True)
            relay.start()
            self._relays.append(relay)

    def _relay(self, member, stream, sink):
        """Pass a member's lines on; keep its rank, and its own `error:` line for the end."""
        for line in iter(stream.readline, b''):
            self.last_output = time.monotonic()
            if member.role == 'worker' and member.rank is None:
                found = RANK.search(line)
                if found:
                    member.rank = int(found.group(1))
            if line.startswith(b'error: '):
                member.error_line = line[len(b'error: '):].decode(errors='replace').strip()
                continue  # the launcher's own line carries it, once
            with self._print_lock:
                try:
                    sink.buffer.write(line)
                    sink.flush()
                except OSError:  # the reader went away (`| head`): keep the job going
                    pass

    def watch(self):
        """Block until the job ends: (failed member, exit status), ('stall', seconds), or
        None when every worker finished well (a job without workers, a SLURM task's
        server or scheduler: when every member did)."""
        while True:
            for member in self.members:
                code = member.proc.poll()
                if code:
                    return member, code
            workers = [m for m in self.members if m.role == 'worker'] or self.members
            if all(m.proc.poll() == 0 for m in workers):
                self._wait_all(FINISH_S)
                return None
            if self.stall_timeout and time.monotonic() - self.last_output > self.stall_timeout:
                return 'stall', self.stall_timeout
            time.sleep(POLL_S)

    def _wait_all(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(m.proc.poll() is None for m in self.members):
            time.sleep(POLL_S)

    def stop(self):
        """SIGTERM to every live member's process group, SIGKILL to what is left after
        GRACE_S; returns how many members were still running."""
        live = [m for m in self.members if m.proc.poll() is None]
        running = len(live)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for member in live:
                try:
                    os.killpg(member.proc.pid, sig)
                except ProcessLookupError:
                    pass
            if sig == signal.SIGTERM:
                self._wait_all(GRACE_S)
                live = [m for m in live if m.proc.poll() is None]
        for member in self.members:
            member.proc.wait()
        deadline = time.monotonic() + 1  # their last lines come before the verdict
        for relay in self._relays:
            relay.join(timeout=max(0, deadline - time.monotonic()))
        return running
