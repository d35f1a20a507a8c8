"""The one exception type for bad user input.

Scripts catch it at the top level and print a single line (`error: ...`) with exit code 2,
never a traceback. Raise it with a message that says what is wrong and how to fix it.
"""
import argparse


class UserError(Exception):
    """Bad input from the user: a flag, a file, a data set."""


class ArgumentParser(argparse.ArgumentParser):
    """Bad flags end like every other bad input: one `error: ...` line, exit code 2."""

    def error(self, message):
        raise UserError('%s (see %s --help)' % (message, self.prog))


def run_main(main, argv=None, mxnet=True):
    """Run `main(argv)` and end the process with its exit code (None: 0); a UserError
    becomes one line on stderr and exit code 2. Every script ends through this. `mxnet`:
    the script may load MXNet (or start processes that do), so the environment MXNet
    reads is checked first (common/environment.py)."""
    import sys
    from common import environment
    try:
        if mxnet:
            environment.check()
        code = main(argv)
    except UserError as err:
        print('error: %s' % err, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def add_old_spelling(parser, *names, dest, **kwargs):
    """A flag's former spelling, still accepted but left out of --help, so that command
    lines written for an earlier version keep working (`parser` may be a group)."""
    parser.add_argument(*names, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS,
                        **kwargs)
