"""The learning-rate schedule (engine/schedule.py)."""
from engine.schedule import lr_at, lr_step_updates


def test_lr_drops_after_exactly_the_step_batches():
    steps = lr_step_updates([2, 3], epoch_size=10)
    assert steps == [20, 30]
    lrs = [lr_at(n, 0.1, 0.1, steps) for n in range(35)]
    # batches 0..19 (epochs 0 and 1) at 0.1, 20..29 at 0.01, 30.. at 0.001
    assert lrs[:20] == [0.1] * 20
    assert all(abs(lr - 0.01) < 1e-12 for lr in lrs[20:30])
    assert all(abs(lr - 0.001) < 1e-12 for lr in lrs[30:])
