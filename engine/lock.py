"""One live process per run: a lock file beside the run's log, holding the owner's pid.

The lock is an flock on the file, so the kernel drops it when its process dies however it
dies; a lock file left by a dead process (a kill -9, a crash) is then simply taken over.
The pid inside names the owner in the message a second process gets. The file is removed
on release; a process that locked a file just removed (same name, other inode) tries again.
"""
import fcntl
import os

from common.errors import UserError


def lock_path(log_path):
    return os.path.splitext(log_path)[0] + '.lock'


class RunLock:
    """Held from acquire() to release(); acquire() raises UserError when another live
    process holds the run."""

    def __init__(self, log_path):
        self.path = lock_path(log_path)
        self.log_path = log_path
        self.handle = None
        self.previous_owner = None   # pid of a dead owner whose lock was taken over

    def acquire(self):
        while self.handle is None:
            handle = self._open()
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = _read_pid(handle)
                handle.close()
                raise UserError('the run %s is in use by another process (pid %s, lock %s); '
                                'wait for it to end or stop it' % (
                                    self.log_path, owner or 'unknown', self.path))
            if not _same_file(handle, self.path):   # removed by its owner meanwhile
                handle.close()
                continue
            self.previous_owner = _read_pid(handle)
            self._write_pid(handle)
            self.handle = handle
        return self

    def _open(self):
        try:
            return open(self.path, 'a+')
        except OSError as err:
            raise UserError('cannot create the lock file %s (%s)' % (self.path, err.strerror))

    def _write_pid(self, handle):
        try:
            handle.seek(0)
            handle.truncate()
            handle.write('%d\n' % os.getpid())
            handle.flush()
        except OSError as err:   # a full disk: leave no empty lock file behind
            os.remove(self.path)
            handle.close()
            raise UserError('cannot write the lock file %s (%s)' % (self.path, err.strerror))

    def release(self):
        if self.handle is None:
            return
        try:
            os.remove(self.path)   # before unlocking: nobody can lock a file still named
        except OSError:
            pass
        self.handle.close()        # closing drops the flock
        self.handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_pid(handle):
    try:
        handle.seek(0)
        text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _same_file(handle, path):
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except OSError:
        return False
