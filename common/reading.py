"""Opening files to read that a user gave or may have replaced: regular files only.

Opening a FIFO for reading waits for a writer, forever; a device or a socket is no data
file either. open_regular opens without blocking (O_NONBLOCK: a FIFO opens at once), looks
at what it opened (fstat, so no one can swap the file between the look and the read), and
only then hands it out, blocking again. Symbolic links are followed: a data set or a log
may well be a link to a regular file elsewhere.
"""
import fcntl
import os
import stat

from common.errors import UserError


class NotRegular(UserError):
    """The path names a FIFO, socket, device or folder, not a regular file."""


def open_regular(path, mode='rb', max_bytes=None, what='', **text_args):
    """The open file at `path` (`mode` 'rb' or 'r'; text_args go to open()).

    NotRegular (a UserError) when it is no regular file, or when it is larger than
    `max_bytes`; OSError as open() gives it (missing, unreadable). `what` names the file
    in messages, e.g. 'the sweep plan'.
    """
    if mode not in ('r', 'rb'):
        raise ValueError('open_regular reads only: %r' % mode)
    return open(path, mode, opener=regular_opener(max_bytes, what), **text_args)


def regular_opener(max_bytes=None, what=''):
    """An `opener` for open() that opens regular files only (see open_regular)."""
    def opener(path, flags):
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            _check(fd, path, max_bytes, what)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            return fd
        except BaseException:
            os.close(fd)
            raise
    return opener


def _check(fd, path, max_bytes, what):
    info = os.fstat(fd)
    named = '%s%s' % (what + ' ' if what else '', path)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegular('%s is not a regular file (%s); give a file'
                         % (named, kind_of(info.st_mode)))
    if max_bytes is not None and info.st_size > max_bytes:
        raise NotRegular('%s is %d bytes, more than such a file can be (at most %d)'
                         % (named, info.st_size, max_bytes))


def is_regular(path):
    """True for a regular file (or a link to one), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def kind_of(mode):
    """What a non-regular file is, for a message."""
    for test, name in ((stat.S_ISFIFO, 'a FIFO'), (stat.S_ISSOCK, 'a socket'),
                       (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
                       (stat.S_ISDIR, 'a folder')):
        if test(mode):
            return name
    return 'not a regular file'
