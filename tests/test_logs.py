"""The log format (engine/logs.py): its writers and its readers, on logs the tests write."""
import argparse
import os

import pytest

from engine import runfiles
from engine.logs import (LOG_FORMAT, append_metrics, batch_line, epoch_lines, head_lines,
                         lines_before_epoch, log_prefix, parse_log, parse_namespace,
                         read_metrics)
from logwriters import STAMP, write_2016_log, write_port_log


def test_formatters_round_trip(tmp_path):
    folder = tmp_path / 'imagenet' / 'cross'
    folder.mkdir(parents=True)
    path = str(folder / 'cross_d62w1_exp1.txt')
    args = argparse.Namespace(network='cross', depth=62, widen_factor=1, num_epochs=2,
                              exp_name=None, lr_steps=[1], gpus='0,1')
    assert batch_line(0, 50, 1234.5612, 2.10341, 2.10344, 21.5625, 21.5625) == (
        'Epoch[0] Batch [50]\tSpeed: 1234.56\tloss: 2.1034(2.1034)\ttop1: 21.5625(21.5625)')
    lines = head_lines(path, args)
    for epoch in range(2):
        lines.append(batch_line(epoch, 10, 100.0, 3.0, 2.5, 40.0, 35.0, 60.0, 55.0))
        lines += epoch_lines(epoch, 0.412345, 1.5 - epoch, 61.234, 1.234567,
                             0.56789 + epoch / 10, val_top5=0.8)
    with open(path, 'w') as out:
        out.write(''.join(STAMP + line + '\n' for line in lines))
    run = parse_log(path)
    assert run.unparseable_lines == 0 and run.complete
    assert (run.dataset, run.network, run.config, run.run_number) == (
        'imagenet', 'cross', 'cross_d62w1_exp', 1)
    assert run.head == [path, 'start with arguments ' + repr(args)]
    assert run.args['lr_steps'] == [1] and run.args['gpus'] == '0,1'
    first = run.records[0]
    assert (first.epoch, first.train_acc, first.train_loss, first.time_cost, first.val_loss,
            first.val_acc, first.val_top5) == (0, 0.412345, 1.5, 61.234, 1.234567, 0.56789,
                                               0.8)
    assert run.records[1].val_acc == pytest.approx(0.66789)
    assert epoch_lines(3, 0.5, None, 1.0, 2.0, 0.25) == [
        'Epoch[3] Train-accuracy=0.500000', 'Epoch[3] Time cost=1.000',
        'Epoch[3] Validation-cross-entropy=2.000000', 'Epoch[3] Validation-accuracy=0.250000']


def test_log_format_and_prefix():
    assert LOG_FORMAT == '%(asctime)s %(message)s'
    assert log_prefix(3, 4) == 'Node[3] ' and log_prefix(0, 1) == ''


def test_node_prefixed_lines_parse(tmp_path):
    path = write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt',
                          0.91, 0.95, nodes=(0, 1))
    with open(path) as stream:
        assert sum('Node[1] Epoch[3] Validation-accuracy' in line for line in stream) == 1
    run = parse_log(path)
    assert run.nodes == [0, 1] and run.unparseable_lines == 0 and run.complete
    assert run.final.val_acc == pytest.approx(0.91)   # node 0's, not node 1's 0.86


def test_resumed_run_appended_to_its_log(tmp_path):
    # --resume appends to the same log and repeats the epochs after the checkpoint
    path = write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt',
                          0.9, 0.9, epochs_done=3)
    lines = [STAMP + 'resuming from x-0002.params at epoch 2 (batch 200), learning rate 0.01']
    for epoch in (2, 3):
        lines += [STAMP + line
                  for line in epoch_lines(epoch, 0.8, 0.3, 10.0, 0.4, 0.77 + epoch / 100)]
        append_metrics(runfiles.metrics_path(path),
                       dict(epoch=epoch, train_acc=0.8, val_acc=0.77 + epoch / 100))
    with open(path, 'a') as out:
        out.write('\n'.join(lines) + '\n')
    run = parse_log(path)
    assert run.complete and run.unparseable_lines == 0
    assert [r.val_acc for r in run.records] == pytest.approx([0.5, 0.6, 0.79, 0.80])


def test_an_epoch_appended_after_a_cut_metrics_line_is_read(tmp_path):
    # a full disk cut the epoch-2 line short; the resumed run writes epoch 2 again
    path = write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt',
                          0.9, 0.9, epochs_done=2)
    metrics = runfiles.metrics_path(path)
    with open(metrics, 'a') as out:
        out.write('{"epoch": 2, "train_acc": 0.8, "val_a')
    for epoch in (2, 3):
        append_metrics(metrics, dict(epoch=epoch, train_acc=0.8, val_acc=0.77 + epoch / 100))
    assert [r.val_acc for r in read_metrics(metrics)] == pytest.approx([0.5, 0.6, 0.79, 0.80])


def test_2016_log_parses(tmp_path):
    run = parse_log(write_2016_log(str(tmp_path / 'cifar10' / 'resnet'),
                                   'resnet_d56w1_exp2.txt', 0.932, 98.25))
    assert run.unparseable_lines == 0 and run.complete
    assert run.args['depth'] == 56 and run.args['gpus'] == '0,1'
    assert run.args['rand_seed'] == 1480042866 and run.args['model_args'] == {}
    assert run.final.train_acc == pytest.approx(0.9825)     # batch [750] running mean
    assert run.final.train_loss == pytest.approx(0.6)
    assert run.final.time_cost == pytest.approx(61.234)


def test_run_number_and_config_key(tmp_path):
    folder = str(tmp_path / 'cifar10_noaug' / 'cross')
    run = parse_log(write_port_log(folder, 'cross_d56w1_myname12.txt', 0.9, 0.9,
                                   exp_name='myname'))
    assert (run.config, run.run_number, run.dataset) == ('cross_d56w1_myname', 12,
                                                         'cifar10_noaug')
    # an exp-name ending in a digit: the arguments say where the name ends
    run = parse_log(write_port_log(folder, 'cross_d56w1_seed71.txt', 0.9, 0.9,
                                   exp_name='seed7'))
    assert (run.config, run.run_number) == ('cross_d56w1_seed7', 1)


def test_parse_namespace_tolerates_odd_reprs():
    fields = parse_namespace("start with arguments Namespace(a=u'x', b=5L, c=[1, (2, 3)], "
                             "d=<function f at 0x7f>, e='q,)', f={'k': [1]}, g=None)")
    assert fields == {'a': 'x', 'b': 5, 'c': [1, (2, 3)], 'd': '<function f at 0x7f>',
                      'e': 'q,)', 'f': {'k': [1]}, 'g': None}
    # cut short by a multi-line value: the fields before the cut survive
    assert parse_namespace('Namespace(num_epochs=400, model_args={\'w\': [[1,') == {
        'num_epochs': 400}
    assert parse_namespace('no arguments here') == {}


def test_this_ports_runs_are_read_from_the_metrics_file(tmp_path):
    path = write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt',
                          0.9, 0.9)
    # the log prints 6 digits; the metrics keep the figure as it was computed
    append_metrics(runfiles.metrics_path(path), dict(epoch=3, val_acc=0.912345678,
                                                     train_acc=0.95))
    run = parse_log(path)
    assert run.final.val_acc == 0.912345678 and run.complete
    # a 2016 log has no metrics file: its lines are read
    old = write_2016_log(str(tmp_path / 'cifar10' / 'resnet'), 'resnet_d56w1_exp1.txt',
                         0.93, 98.5)
    assert not os.path.exists(runfiles.metrics_path(old))
    assert parse_log(old).final.val_acc == pytest.approx(0.93)


def test_run_settings_line_gives_the_resolved_name_and_seed(tmp_path):
    # the flags as typed (an alias, no seed); the engine's settled values on the next line
    path = write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt',
                          0.9, 0.9, args_extra=dict(network='dfn-mr', rand_seed=None))
    with open(path) as handle:
        lines = handle.readlines()
    lines.insert(2, STAMP + "run settings Namespace(network='cross', rand_seed=42)\n")
    with open(path, 'w') as handle:
        handle.writelines(lines)
    run = parse_log(path)
    assert (run.args['network'], run.args['rand_seed']) == ('cross', 42)
    assert (run.config, run.run_number) == ('cross_d56w1_exp', 1)


def test_lines_before_epoch_keep_head_out_and_epochs_in(tmp_path):
    path = write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt',
                          0.9, 0.9)
    kept = lines_before_epoch(path, 2)
    assert kept and all('Epoch[0]' in line or 'Epoch[1]' in line for line in kept)
    assert sum('Validation-accuracy' in line for line in kept) == 2
    metrics = lines_before_epoch(runfiles.metrics_path(path), 2, of_metrics=True)
    assert [line.count('"epoch": %d' % e) for line, e in zip(metrics, (0, 1))] == [1, 1]
    assert len(metrics) == 2
