"""The learning-rate schedule (engine/schedule.py)."""
import argparse

import pytest

from common.errors import UserError
from engine.fit import schedule_of
from engine.schedule import epoch_size, lr_at, lr_step_updates


def test_lr_drops_after_exactly_the_step_batches():
    steps = lr_step_updates([2, 3], epoch_size=10)
    assert steps == [20, 30]
    lrs = [lr_at(n, 0.1, 0.1, steps) for n in range(35)]
    # batches 0..19 (epochs 0 and 1) at 0.1, 20..29 at 0.01, 30.. at 0.001
    assert lrs[:20] == [0.1] * 20
    assert all(abs(lr - 0.01) < 1e-12 for lr in lrs[20:30])
    assert all(abs(lr - 0.001) < 1e-12 for lr in lrs[30:])


def test_steps_match_mxnets_multifactor_scheduler():
    # the original: MultiFactorScheduler(step=[E * floor(N/B)]), asked for update k = 1, 2, ...
    import mxnet as mx
    size = epoch_size(50000, 64)
    assert size == 781
    steps = lr_step_updates([2, 3], size)
    original = mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=0.1, base_lr=0.1)
    for k in range(1, 4 * size):
        assert lr_at(k - 1, 0.1, 0.1, steps) == pytest.approx(original(k), rel=1e-12), k


def test_dist_workers_divide_the_epoch_so_steps_keep_their_epochs():
    assert epoch_size(50000, 64, num_workers=1) == 781
    assert epoch_size(50000, 64, num_workers=2) == 390   # floor(50000 / 128)
    args = argparse.Namespace(lr=0.1, lr_factor=0.1, lr_step_epochs=[200, 300],
                              num_examples=50000, batch_size=64)
    assert schedule_of(args, num_workers=2).step_updates == [200 * 390, 300 * 390]
    assert schedule_of(args, num_workers=1).step_updates == [200 * 781, 300 * 781]


def test_too_few_examples_for_one_batch_is_a_user_error():
    with pytest.raises(UserError, match='--num-examples 100 is less than one batch'):
        epoch_size(100, 64, num_workers=2)
