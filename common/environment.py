"""The environment variables MXNet reads when it loads, checked before it does.

MXNet parses them in C++ as it starts: OMP_NUM_THREADS=abc ends the process with SIGABRT
and no message a user can act on, MXNET_ENGINE_TYPE=Foo with a C++ traceback. Every
script checks them first (common.errors.run_main, and the scripts that load MXNet on
import, before their imports) and refuses a bad value with one line.
"""
import os
import re

# Whole numbers of threads; 0 or less libgomp and MXNet reject or ignore.
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'MXNET_CPU_WORKER_NTHREADS',
                    'MXNET_GPU_WORKER_NTHREADS', 'MXNET_CPU_PRIORITY_NTHREADS',
                    'MXNET_OMP_MAX_THREADS')
# Switches MXNet or this project reads as integers (0 off, 1 on).
SWITCH_VARIABLES = ('MXNET_MKLDNN_ENABLED', 'MXNET_DISABLE_MKLDNN_FUSE_CONV_SUM')
ENGINES = ('NaiveEngine', 'ThreadedEngine', 'ThreadedEnginePerDevice')
MAX_THREADS = 4096


def problem(environ=None):
    """What is wrong with the environment for MXNet, as one sentence; None when nothing."""
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        value = environ.get(name)
        if value is not None and not (re.fullmatch(r'[0-9]{1,6}', value)
                                      and 1 <= int(value) <= MAX_THREADS):
            return ('%s=%r is not a number of threads (a whole number from 1 to %d); set it '
                    'to one, e.g. %s=2, or unset it' % (name, value, MAX_THREADS, name))
    for name in SWITCH_VARIABLES:
        value = environ.get(name)
        if value is not None and value not in ('0', '1'):
            return '%s=%r must be 0 or 1, or unset' % (name, value)
    engine = environ.get('MXNET_ENGINE_TYPE')
    if engine is not None and engine not in ENGINES:
        return ('MXNET_ENGINE_TYPE=%r is not one of MXNet\'s engines (%s); unset it to let '
                'the scripts choose' % (engine, ', '.join(ENGINES)))
    return None


def check():
    """Raise UserError when problem() finds something."""
    from common.errors import UserError
    found = problem()
    if found:
        raise UserError(found)


def exit_if_bad():
    """For scripts that load MXNet on import: one `error:` line and exit code 2, before."""
    import sys
    found = problem()
    if found:
        print('error: %s' % found, file=sys.stderr)
        sys.exit(2)
