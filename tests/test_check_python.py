"""`make setup`'s first step, tools/check_python.py: one line naming the versions that work
and why, before anything is installed."""
import os
import subprocess
import sys

import pytest

from helpers import assert_one_line_error
from tools import check_python

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tools', 'check_python.py')


@pytest.mark.parametrize('version, works', [
    ((3, 9), False), ((3, 10), True), ((3, 11), True), ((3, 12), False), ((3, 13), False),
    ((2, 7), False)])
def test_only_the_versions_the_pins_install_on_work(version, works):
    why = check_python.problem(version)
    assert (why is None) == works
    if not works:
        assert 'Python %d.%d' % version in why and '3.10 or 3.11' in why
        assert 'numpy 1.23.5' in why and 'MXNet 1.9.1' in why and '\n' not in why


def test_the_interpreter_running_the_tests_passes():
    assert check_python.problem(sys.version_info[:2]) is None   # the venv's


@pytest.mark.slow
def test_an_unsupported_python_stops_with_one_line_and_code_2():
    proc = subprocess.run([sys.executable, SCRIPT, '--pretend', '3.12'], capture_output=True,
                          text=True)
    assert_one_line_error(proc, 'Python 3.12', 'use Python 3.10 or 3.11',
                          'no wheel beyond 3.11')
    proc = subprocess.run([sys.executable, SCRIPT, '--pretend', '3.11'], capture_output=True,
                          text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, '', '')
    assert_one_line_error(subprocess.run([sys.executable, SCRIPT, '--pretend', 'x'],
                                         capture_output=True, text=True), '--pretend')


def test_make_setup_checks_the_version_before_anything_else():
    with open(os.path.join(ROOT, 'Makefile')) as handle:
        makefile = handle.read()
    rule = makefile.split('\n$(STAMP): ', 1)[1].split('\n\n', 1)[0]
    prerequisites, recipe = rule.split('\t$(CHECK_PYTHON)\n', 1)   # the recipe's first line
    assert 'requirements.txt' in prerequisites and 'venv' not in prerequisites
    assert 'venv' in recipe and 'pip install' in recipe
    assert 'CHECK_PYTHON = ' in makefile and 'tools/check_python.py' in makefile
