"""Imported first by every entry script in tools/: puts the repository root on sys.path,
so that the scripts import the project's packages (and tools.*) as the tests do."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
