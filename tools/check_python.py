#!/usr/bin/env python3
"""Is this Python one the project installs on? `make setup` asks first, before any pip
install, so that an unsupported version fails in one line instead of deep inside a numpy
build. Standard library only, in syntax old Pythons still parse: it runs before the
virtual environment exists, on whatever python3 is there.

    python3 tools/check_python.py                 # this interpreter
    python3 tools/check_python.py --pretend 3.12  # as if it were another version (tests)

Exit status 0 when the version works, 2 (and one `error:` line) when it does not.
"""
import sys

# requirements.txt pins numpy 1.23.5, the last numpy MXNet 1.9.1 runs on (it uses np.bool,
# removed in 1.24): it has wheels for CPython 3.8 to 3.11 only, and its source build fails
# on 3.12 (no distutils). scipy 1.15, matplotlib 3.10, contourpy 1.3 and requests 2.34,
# the newest releases that accept numpy 1.23, need Python 3.10 or newer.
SUPPORTED = ((3, 10), (3, 11))
WHY = ('numpy 1.23.5, the last numpy MXNet 1.9.1 runs on, has no wheel beyond 3.11, and '
       'the pinned scipy and matplotlib need 3.10')


def problem(version):
    """None when (major, minor) `version` works, else the one-line reason."""
    if tuple(version[:2]) in SUPPORTED:
        return None
    return ('Python %d.%d cannot install this project: use Python %s (%s); e.g. make setup '
            'PYTHON=python3.11' % (version[0], version[1],
                                   ' or '.join('%d.%d' % v for v in SUPPORTED), WHY))


def parse_version(text):
    try:
        major, minor = (int(part) for part in text.split('.')[:2])
    except ValueError:
        return None
    return major, minor


def main(argv):
    version = tuple(sys.version_info[:2])
    if argv[:1] == ['--pretend'] and len(argv) == 2:
        version = parse_version(argv[1])
        if version is None:
            print('error: --pretend takes MAJOR.MINOR, e.g. 3.11, not %r' % argv[1],
                  file=sys.stderr)
            return 2
    elif argv:
        print('error: usage: check_python.py [--pretend MAJOR.MINOR]', file=sys.stderr)
        return 2
    why = problem(version)
    if why:
        print('error: ' + why, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
