"""The training engine: flags, devices, the loop, its log, metrics and checkpoints.

Imports run one way: the entry scripts import engine, network, data and common; the
engine imports network and common, never data (the scripts hand it the iterators);
data imports only common. How the pieces call each other: docs/architecture.md.
"""
