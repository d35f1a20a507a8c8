"""What tools/benchmark.py measures (lib, one measurement per process), how it runs and
reports them (report), and its references (torch_ref: PyTorch; iterator: the CIFAR readers).

Nothing here imports numpy or MXNet at import time: the benchmark sets MXNet's environment
(and OMP_NUM_THREADS, which numpy's BLAS reads when it loads) first.
"""

# The measurements of the main benchmark, in the order they run each round.
KINDS = ('step', 'loop', 'eval', 'infer', 'fused', 'int8')
