"""Names and text in outputs (issue 24, class 8): each output format escapes names by its
own rules (common/text.py): no UnicodeEncodeError for a name that is not UTF-8, no
spreadsheet formula in a CSV cell, no extra column in a Markdown table, no control
character on the terminal."""
import csv
import io
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common.text import csv_cell, markdown_cell, readable
from inference_helpers import tiny_run
from logwriters import write_port_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('text,cell', [('=1+1', "'=1+1"), ('+cmd', "'+cmd"), ('-2', "'-2"),
                                       ('@SUM(A1)', "'@SUM(A1)"), ('\tx', '\\x09x'),
                                       ('cross', 'cross'), ('a=b', 'a=b')])
def test_a_csv_cell_never_starts_a_formula(text, cell):
    assert csv_cell(text) == cell


def test_markdown_and_terminal_escapes():
    assert markdown_cell('a|b\\c') == 'a\\|b\\\\c'
    assert readable('a\nb\x1b[31m') == 'a\\x0ab\\x1b[31m'
    name = os.fsdecode(b'caf\xe9.png')   # Latin-1, as a file system may hold it
    assert readable(name) == 'caf\\xe9.png'
    assert readable(name).encode('utf-8')


def _get_results(root):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'get_results.py'), root],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_get_results_csv_and_markdown_escape_names(tmp_path):
    """Folder and run names copied raw became formulas in results.csv and extra columns
    in results.md."""
    root = str(tmp_path)
    write_port_log(os.path.join(root, '=HYPERLINK("x")', 'cross'), 'cross_d56w1_exp1.txt',
                   0.9, 0.95)
    write_port_log(os.path.join(root, 'cifar10', 'a|b'), 'cross_d56w1_=1+11.txt', 0.9, 0.95,
                   exp_name='=1+1')
    proc = _get_results(root)
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(root, 'results.csv'), newline='') as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    text_columns = [header.index(c) for c in ('dataset', 'network', 'config', 'median_run')]
    for row in body:
        assert len(row) == len(header)
        for column in text_columns:
            assert not row[column].startswith(('=', '+', '-', '@')), row
    assert "'=HYPERLINK(\"x\")" in [row[0] for row in body]
    with open(os.path.join(root, 'results.md')) as handle:
        table = [line for line in handle if line.startswith('| ')]
    columns = table[0].count('|')
    for line in table:
        assert line.replace('\\|', '').count('|') == columns, line
    assert 'a\\|b' in ''.join(table)


@pytest.mark.slow
def test_get_results_prints_a_name_with_a_newline_on_one_line(tmp_path):
    root = str(tmp_path)
    write_port_log(os.path.join(root, 'cifar10', 'cross'), 'cross_d56w1_exp1.txt', 0.9, 0.95)
    write_port_log(os.path.join(root, 'cifar\nfake', 'cross'), 'cross_d56w1_exp1.txt', 0.9,
                   0.95)
    proc = _get_results(root)
    assert proc.returncode == 0, proc.stderr
    assert 'cifar\\x0afake' in proc.stdout
    assert not any(line.startswith('fake') for line in proc.stdout.splitlines())


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['table', 'csv', 'json'])
def test_predict_prints_a_name_that_is_not_utf8(run, tmp_path, fmt):
    """A non-UTF-8 file name gave a UnicodeEncodeError on output."""
    names = [b'caf\xe9.png', b'=cmd.png']
    for name in names:
        ok, buf = cv2.imencode('.png', np.full((28, 28), 200, np.uint8))
        with open(os.path.join(os.fsencode(str(tmp_path)), name), 'wb') as handle:
            handle.write(buf.tobytes())
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'predict.py'),
                           run['log'], '--input'] + names + ['--format', fmt],
                          capture_output=True, timeout=120, cwd=str(tmp_path),
                          env=dict(os.environ, PYTHONIOENCODING='utf-8'))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode('utf-8')
    if fmt == 'json':
        assert '\\udce9.png' in out   # JSON's own escape keeps the name exact
    else:
        assert 'caf\\xe9.png' in out
    if fmt == 'csv':
        cells = [row[0] for row in csv.reader(io.StringIO(out))][1:]
        assert cells == ['caf\\xe9.png', "'=cmd.png"]
