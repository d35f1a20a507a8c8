"""The command-line tools. The entry scripts sit in tools/ itself (run them as
`python tools/<name>.py`); what they share lives in the sub-packages, imported as
`tools.<package>.<module>` from the repository root:

  bench/    the benchmark's measurements, report and references (tools/benchmark.py)
  dist/     a parameter-server job and its remote guard (tools/launch.py)
  sweeper/  a sweep's plan, state and checks (tools/sweep.py)
"""
