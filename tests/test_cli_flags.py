"""Flags across the scripts: a mistyped flag is bad input like any other (one line, exit
code 2); the tools spell the same things the same way (--gpus, --out FILE, --out-dir
FOLDER), and the spellings they had before still work, out of --help."""
import os
import subprocess
import sys

import pytest

import show_model
from common.errors import UserError
from data import prepare
from helpers import assert_one_line_error
from inference import components, evaluate, lesion, predict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.parametrize('argv, words', [
    (['train_model.py', '--depth', 'abc'], ["invalid int value: 'abc'", 'train_model.py --help']),
    (['train_imagenet.py', '--bogus'], ['unrecognized arguments: --bogus']),
    (['show_model.py', '--format', 'gif'], ["invalid choice: 'gif'"]),
    (['get_results.py', '--nope'], ['unrecognized arguments: --nope']),
    (['-m', 'data.prepare', 'nothing'], ["invalid choice: 'nothing'", 'data.prepare --help']),
])
def test_bad_flags_give_one_line(argv, words):
    proc = subprocess.run([sys.executable] + argv, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert_one_line_error(proc, *words)


def parsed(parse, argv):
    """`parse(argv)` (a script's own parser function), as a dict of flag values."""
    return vars(parse(argv))


# (the script's parser function, the flags it needs besides, the old spelling, the new one)
RENAMED = [
    (predict.build_parser().parse_args, ['RUN', '--input', 'x.png'], ['-o', 'p.csv'],
     ['--out', 'p.csv']),
    (predict.build_parser().parse_args, ['RUN', '--input', 'x.png'], ['--output', 'p.csv'],
     ['--out', 'p.csv']),
    (predict.build_parser().parse_args, ['RUN', '--input', 'x.png'], ['--gpu', '1'],
     ['--gpus', '1']),
    (evaluate.build_parser().parse_args, ['RUN'], ['--gpu', '0'], ['--gpus', '0']),
    (components.parse, ['--network', 'cross', '--depth', '14'], ['--out', 'view'],
     ['--out-dir', 'view']),
    (show_model.parse_args, ['--network', 'cross'], ['--out', 'pictures'],
     ['--out-dir', 'pictures']),
    (prepare.parse_args, ['fashion-mnist'], ['--out', 'records'], ['--out-dir', 'records']),
    (lesion.build_parser().parse_args, ['RUN'], ['--out', 'view'], ['--out-dir', 'view']),
]


@pytest.mark.parametrize('parse, base, old, new', RENAMED,
                         ids=['%s %s' % (case[2][0], case[3][0]) for case in RENAMED])
def test_old_spellings_still_work_and_stay_out_of_help(parse, base, old, new, capsys):
    assert parsed(parse, base + old) == parsed(parse, base + new)
    assert parsed(parse, base + old) != parsed(parse, base)      # it did set something
    with pytest.raises(SystemExit):
        parse(['--help'])
    shown = capsys.readouterr().out
    assert new[0] in shown and old[0] + ' ' not in shown and old[0] + ',' not in shown


def test_inference_gpus_take_one_id_or_nothing():
    parse = evaluate.build_parser().parse_args
    assert parse(['RUN', '--gpus', '2']).gpu == 2
    assert parse(['RUN', '--gpus', '']).gpu is None and parse(['RUN']).gpu is None
    with pytest.raises(UserError, match='one GPU id'):
        parse(['RUN', '--gpus', '0,1'])
    with pytest.raises(UserError, match='--gpu: GPU ids start at 0, not -1'):
        parse(['RUN', '--gpu', '-1'])        # the old spelling is checked alike
