"""One live process per run: a lock file beside the run's log, holding the owner's pid.

The lock is an flock on the file, so the kernel drops it when its process dies however it
dies; a lock file left by a dead process (a kill -9, a crash) is then simply taken over.
The pid inside names the owner in the message a second process gets. The file is removed
on release; a process that locked a file just removed (same name, other inode) tries again.
"""
import fcntl
import os

from common.errors import UserError
from engine.checkpoint import WriteFailed


def lock_path(log_path):
    return os.path.splitext(log_path)[0] + '.lock'


class RunLock:
    """Held from acquire() to release(); acquire() raises UserError when another live
    process holds the run, WriteFailed when the lock file cannot be written."""

    def __init__(self, log_path):
        self.path = lock_path(log_path)
        self.log_path = log_path
        self.fd = None
        self.previous_owner = None   # pid of a dead owner whose lock was taken over

    def acquire(self):
        while self.fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise WriteFailed(self.path, err)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = _read_pid(fd)
                os.close(fd)
                raise UserError('the run %s is in use by another process (pid %s, lock %s); '
                                'wait for it to end or stop it' % (
                                    self.log_path, owner or 'unknown', self.path))
            if not _same_file(fd, self.path):   # removed by its owner meanwhile
                os.close(fd)
                continue
            self.previous_owner = _read_pid(fd)
            self._write_pid(fd)
            self.fd = fd
        return self

    def _write_pid(self, fd):
        try:   # unbuffered: nothing is left to fail when the file is closed
            os.ftruncate(fd, 0)
            text = b'%d\n' % os.getpid()
            if os.pwrite(fd, text, 0) != len(text):
                raise OSError(28, os.strerror(28))
        except OSError as err:   # a full disk: leave no empty lock file behind
            os.remove(self.path)
            os.close(fd)
            raise WriteFailed(self.path, err)

    def release(self):
        if self.fd is None:
            return
        try:
            os.remove(self.path)   # before unlocking: nobody can lock a file still named
        except OSError:
            pass
        os.close(self.fd)          # closing drops the flock
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _same_file(fd, path):
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False
