"""Using a trained network: find a checkpoint, load it, evaluate, predict, export.

Shared by the thin scripts tools/evaluate.py, tools/predict.py, tools/export.py and
tools/bench_inference.py.
"""
