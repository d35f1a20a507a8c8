"""One live process per run: a lock file beside the run's log, holding the owner's pid.

A PidLock (common/pidlock.py): an flock, which the kernel drops when its process dies
however it dies, so the lock file of a dead process (a kill -9, a crash) is simply taken
over; the pid inside names the owner in the message a second process gets. The file is
removed on release.
"""
import os

from common.errors import UserError
from common.pidlock import Busy, PidLock
from engine.checkpoint import WriteFailed


def lock_path(log_path):
    return os.path.splitext(log_path)[0] + '.lock'


class RunLock(PidLock):
    """Held from acquire() to release(); acquire() raises UserError when another live
    process holds the run, WriteFailed when the lock file cannot be written."""

    def __init__(self, log_path):
        super().__init__(lock_path(log_path), remove=True)
        self.log_path = log_path

    def acquire(self):
        try:
            return super().acquire()
        except Busy as busy:
            raise UserError('the run %s is in use by another process (pid %s, lock %s); '
                            'wait for it to end or stop it' % (self.log_path, busy.holder,
                                                               self.path))
        except OSError as err:
            raise WriteFailed(self.path, err)

    @property
    def previous_owner(self):
        """The pid of a dead owner whose lock was taken over, or None."""
        held = self.previous_holder
        return int(held) if held and held.isdigit() else None
