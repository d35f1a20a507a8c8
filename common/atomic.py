"""Writing files so that no reader ever sees one half-written (shared by the scripts)."""
import contextlib
import csv
import os

from common.errors import UserError


@contextlib.contextmanager
def scratch_path(path, tag='tmp'):
    """A hidden file name beside `path`, removed afterwards whatever happens."""
    temp = os.path.join(os.path.dirname(path) or '.',
                        '.%s.%s%d' % (os.path.basename(path), tag, os.getpid()))
    try:
        yield temp
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def atomic_write(path, write):
    """Call write(temp_path), then rename onto `path`: readers never see a partial file."""
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
