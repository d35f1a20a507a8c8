"""Run a command on a remote host so that it cannot outlive its ssh connection.

tools/launch.py sends this file's text through ssh (`python3 -c SOURCE COMMAND...`), so it
needs nothing installed remotely and uses the standard library only. The command runs in a
process group of its own. The launcher never writes to ssh's standard input: when that
input ends, the connection is gone (the launcher stopped the job, died, or the network
dropped) and the whole group is stopped: SIGTERM, then SIGKILL. Without this, sshd leaves
a remote worker running, blocked on a parameter server that no longer exists.

Exit status: the command's own, or 128 + N when signal N killed it (as a shell reports it).
"""
import os
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 5  # between SIGTERM and SIGKILL


def stop_group(child):
    """SIGTERM to the command's whole group; SIGKILL to what is left after GRACE_S."""
    for sig, wait_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, 0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)


def end_with_connection(child):
    """Block until standard input ends, then stop the command's group and leave."""
    while os.read(0, 4096):
        pass
    stop_group(child)
    os._exit(128 + signal.SIGHUP)


def main(command):
    child = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
    threading.Thread(target=end_with_connection, args=(child,), daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: (stop_group(child), os._exit(128 + signum)))
    code = child.wait()
    try:  # whatever the command left behind in its group goes with it
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return code if code >= 0 else 128 - code


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
