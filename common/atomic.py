"""Writing files: whole or not at all, and never through a link someone planted.

Every file the project creates or replaces goes through here. A whole file is written
under a fresh hidden name of its own, created with O_EXCL | O_NOFOLLOW (a link or file
planted under that name is never opened: another name is drawn), then renamed onto its
path: a rename replaces a link standing there instead of writing through it. A file that
is appended to (a log, the metrics, a lock) is opened with O_NOFOLLOW: a link planted in
its place is refused with one line, never written through.
"""
import contextlib
import csv
import errno
import os
import secrets

from common.errors import UserError

LINK_REFUSED = 'a symbolic link stands there, which is never written through'


@contextlib.contextmanager
def scratch_path(path, tag='tmp'):
    """A fresh hidden file beside `path`, made by this process alone (empty, O_EXCL), and
    removed afterwards whatever happens."""
    folder = os.path.dirname(path) or '.'
    while True:
        temp = os.path.join(folder, '.%s.%s%d.%s' % (os.path.basename(path), tag, os.getpid(),
                                                     secrets.token_hex(4)))
        try:
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o666))
            break
        except FileExistsError:   # planted, or left by a killed process: draw again
            continue
    try:
        yield temp
    finally:
        if os.path.lexists(temp):
            os.remove(temp)


def atomic_write(path, write):
    """Call write(temp_path), then rename onto `path`: readers never see a partial file,
    and a link at `path` is replaced, not written through."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with scratch_path(path) as temp:
        write(temp)
        with open(temp, 'rb') as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)


def write_whole(path, write):
    """atomic_write for the scripts' outputs: a failed write (a full disk) is one line,
    `cannot write PATH (why)`, and leaves an earlier file as it was and no partial one."""
    try:
        atomic_write(path, write)
    except OSError as err:
        raise UserError('cannot write %s (%s)' % (path, err.strerror or err)) from None


def write_whole_text(path, text):
    """`text` into `path`, all or nothing (write_whole)."""
    def write(temp):
        with open(temp, 'w') as handle:
            handle.write(text)
    write_whole(path, write)


def write_whole_csv(path, header, rows):
    """A CSV file (Python's default dialect) of `header` and `rows`, all or nothing."""
    def write(temp):
        with open(temp, 'w', newline='') as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(rows)
    write_whole(path, write)


def open_nofollow(path, flags, mode=0o644):
    """os.open with O_NOFOLLOW: a link at `path` is an OSError saying so (LINK_REFUSED)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, LINK_REFUSED, path) from None
        raise


def nofollow_opener(path, flags):
    """An `opener` for open(): the file, never a link standing in its place."""
    return open_nofollow(path, flags)


def open_append(path, mode='a', **text_args):
    """`path` opened to append (created when missing), never through a link."""
    if not mode.startswith('a'):
        raise ValueError('open_append appends only: %r' % mode)
    return open(path, mode, opener=nofollow_opener, **text_args)
