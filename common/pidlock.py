"""One process at a time: an flock on a file that holds the owner's pid.

The kernel drops an flock when its process ends, however it ends, so a lock file left
behind by a killed process is stale by construction and the next process simply takes it.
With `remove=True` the file is removed on release; a process that locked a file just
removed (the same name, another inode) then tries again.
"""
import errno
import fcntl
import os
import stat

from common.atomic import open_nofollow


class Busy(Exception):
    """Another live process holds the lock; `holder` is its pid as text."""

    def __init__(self, holder):
        super().__init__(holder)
        self.holder = holder


class PidLock:
    """Held from acquire() (Busy when another process holds it) to release()."""

    def __init__(self, path, remove=False):
        self.path = path
        self.remove = remove
        self.fd = None
        self.previous_holder = None   # the pid a dead holder left in the file, if any

    def acquire(self):
        while True:
            fd = _open_lock_file(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd) or 'unknown'
                os.close(fd)
                raise Busy(holder)
            if not self.remove or _same_file(fd, self.path):
                break
            os.close(fd)   # removed by its owner meanwhile
        self.previous_holder = _read_pid(fd)
        try:   # unbuffered: nothing is left to fail when the file is closed
            os.ftruncate(fd, 0)
            text = b'%d\n' % os.getpid()
            if os.pwrite(fd, text, 0) != len(text):
                raise OSError(28, os.strerror(28))
        except OSError:   # a full disk: leave no empty lock file behind
            if self.remove:
                os.remove(self.path)
            os.close(fd)
            raise
        self.fd = fd
        return self

    def release(self):
        if self.fd is None:
            return
        if self.remove:
            try:
                os.remove(self.path)   # before unlocking: nobody can lock a file still named
            except OSError:
                pass
        os.close(self.fd)              # closing drops the flock
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    @staticmethod
    def holder(path):
        """The pid (text) of the live process holding `path`, or None."""
        try:   # not blocking on a FIFO, not reading through a link
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            return _read_pid(fd) or 'unknown'
        finally:
            os.close(fd)


def _open_lock_file(path):
    """The lock file, created when missing: never through a link planted in its place, and
    only a regular file (a FIFO or device there is an OSError naming it)."""
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, 'not a regular file', path)
    return fd


def _read_pid(fd):
    """The pid the file holds, as text, or None when it is empty."""
    return os.pread(fd, 64, 0).decode('ascii', 'replace').strip() or None


def _same_file(fd, path):
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False
