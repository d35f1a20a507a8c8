import os
import subprocess
import sys

import pytest

# Tests import the project's packages (network, data, engine, common) from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# What train_model.py sets for a CPU run (engine/runtime.py), set here because the tests
# import mxnet before they train in-process: the naive engine makes runs repeatable. The
# engine starts now and the variable goes again, so the scripts that tests run as
# subprocesses set up MXNet themselves, as they do for a user.
os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
_had_engine = 'MXNET_ENGINE_TYPE' in os.environ
os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
from engine.runtime import start_engine_quietly  # noqa: E402
start_engine_quietly()
if not _had_engine:
    del os.environ['MXNET_ENGINE_TYPE']


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs, to fill (helpers.fill) (needs root; skipped where mounting is not
    permitted)."""
    folder = tmp_path / 'disk'
    folder.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', str(folder)],
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % proc.stderr.decode().strip())
    yield folder
    subprocess.run(['umount', '--lazy', str(folder)], check=True)
