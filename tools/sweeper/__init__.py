"""A sweep's grid, plan and per-run state (state) and the check of its runs before any
starts (check). Used by tools/sweep.py."""
