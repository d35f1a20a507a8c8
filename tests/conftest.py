import os
import sys

# Tests import the project's packages (network, data, common) from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# What train_model.py sets for a CPU run (common/runtime.py), set here because the tests
# import mxnet before they train in-process: the naive engine makes runs repeatable.
os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
