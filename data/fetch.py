"""Getting source files safely: download, md5 checks and tar archives read without extraction.

Downloads land under a `.part` name and are renamed only once their md5 matches, so a file
with the final name is always a complete, verified copy.
"""
import hashlib
import os
import tarfile
import urllib.error
import urllib.request
import zlib

from tqdm import tqdm

from common.atomic import nofollow_opener
from common.errors import UserError
from common.reading import open_regular

_CHUNK = 1 << 20
# Default of the converters' md5 arguments: the official file's checksum.
OFFICIAL = 'official'


def md5_of(path=None, data=None):
    """The md5 hex digest of a file, or of bytes already in memory."""
    digest = hashlib.md5()
    if data is not None:
        digest.update(data)
        return digest.hexdigest()
    try:
        with open_regular(path) as f:   # a FIFO would block the sum forever
            for chunk in iter(lambda: f.read(_CHUNK), b''):
                digest.update(chunk)
    except OSError as err:
        raise UserError('cannot read %s (%s)' % (path, err.strerror or err)) from None
    return digest.hexdigest()


def check_md5(path, expected, what=None):
    """Refuse `path` unless its md5 is `expected` (None skips the check)."""
    if expected is None:
        return
    actual = md5_of(path)
    if actual != expected:
        raise UserError('checksum mismatch for %s: md5 %s, the official file has %s; it is '
                        'truncated or not the official %s: delete it and run again'
                        % (path, actual, expected, what or os.path.basename(path)))


def download(url, path, md5):
    """Fetch `url` to `path` unless a verified copy is there; the md5 is checked either way."""
    if os.path.isfile(path):
        check_md5(path, md5)
        return path
    folder = os.path.abspath(os.path.dirname(path))
    created = []  # folders made here, removed again if the download fails
    while not os.path.isdir(folder):
        created.append(folder)
        folder = os.path.dirname(folder)
    for folder in reversed(created):
        os.mkdir(folder)
    partial = path + '.part'
    done = False
    try:
        with urllib.request.urlopen(url, timeout=60) as response, \
                open(partial, 'wb', opener=nofollow_opener) as out:
            total = int(response.headers.get('Content-Length') or 0) or None
            with tqdm(total=total, unit='B', unit_scale=True,
                      desc='download %s' % os.path.basename(path)) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b''):
                    out.write(chunk)
                    bar.update(len(chunk))
        check_md5(partial, md5, os.path.basename(path))
        os.replace(partial, path)
        done = True
    except (urllib.error.URLError, OSError) as err:
        raise UserError('cannot download %s (%s); download it by hand and pass its folder '
                        'with --source' % (url, getattr(err, 'reason', err))) from None
    finally:
        if os.path.lexists(partial):
            os.remove(partial)
        if not done:
            for folder in created:
                if not os.listdir(folder):
                    os.rmdir(folder)
    return path


def _is_safe_member(member):
    parts = member.name.replace('\\', '/').split('/')
    return (member.isfile() or member.isdir()) and not member.name.startswith('/') \
        and '..' not in parts and ':' not in parts[0]


class SafeTar:
    """A tar archive whose members were all checked before any is read; read into memory.

    A member that is a link or a device, or whose path is absolute or climbs out with '..',
    makes the whole archive refused: nothing from it is ever written to disk.
    """

    def __init__(self, path):
        self.path = path
        try:
            self._tar = tarfile.open(path, 'r:*')
            self._members = {m.name: m for m in self._tar.getmembers()}
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise UserError('%s is not a complete tar archive (%s); delete it and run again'
                            % (path, err)) from None
        unsafe = [name for name, m in self._members.items() if not _is_safe_member(m)]
        if unsafe:
            self._tar.close()
            raise UserError('%s has a member that could land outside the target folder (%s); '
                            'refusing the archive' % (path, unsafe[0]))

    def read(self, name):
        member = self._members.get(name)
        if member is None or not member.isfile():
            raise UserError('%s has no member %s: it is not the official archive'
                            % (self.path, name))
        try:
            return self._tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise UserError('%s is cut short (%s); delete it and run again'
                            % (self.path, err)) from None

    def close(self):
        self._tar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
