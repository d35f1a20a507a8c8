"""tutorial.ipynb: committed clean, and it runs headless from top to bottom on a tiny budget.

The notebook runs in a kernel of this interpreter (the .venv's ipykernel) through a kernel
spec written to a temporary folder on JUPYTER_PATH, so nothing needs `ipykernel install`
and nothing is written outside the repository and the temporary folder (IPython's profile
and Jupyter's connection files go there too). TUTORIAL_QUICK=1 makes the notebook's
parameters cell choose one epoch on a slice of Fashion-MNIST (the first 2048 training and
1000 test images of the official files), in TUTORIAL_WORK.
"""
import json
import os
import re
import sys

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, 'tutorial.ipynb')
FASHION = '/usr/share/datasets/fashion-mnist'
KERNEL = 'deep-fusion-tutorial'
CELL_TIMEOUT = 600   # seconds; the whole notebook takes well under a minute in quick mode


def read_notebook():
    with open(NOTEBOOK, encoding='utf-8') as f:
        return nbformat.read(f, as_version=4)


def test_committed_notebook_has_no_outputs():
    nb = read_notebook()
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == 'code']
    assert code, 'the tutorial has no code cells'
    for index, cell in enumerate(code):
        assert cell.outputs == [], 'code cell %d has outputs: clear them before committing' % index
        assert cell.execution_count is None, 'code cell %d has an execution count' % index
    assert nb.metadata.kernelspec.name == 'python3'
    # exactly one parameters cell, the one the quick mode overrides
    tagged = [cell for cell in code if 'parameters' in cell.metadata.get('tags', [])]
    assert len(tagged) == 1 and 'TUTORIAL_QUICK' in tagged[0].source


def _kernel_spec(folder):
    """A kernel spec that starts ipykernel with this interpreter, found through JUPYTER_PATH."""
    spec_dir = folder / 'kernels' / KERNEL
    spec_dir.mkdir(parents=True)
    spec = dict(argv=[sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
                display_name='Python 3 (deep fusion tests)', language='python',
                env=dict(PYTHONPATH=os.pathsep.join(
                    [ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p])))
    (spec_dir / 'kernel.json').write_text(json.dumps(spec))
    return str(folder)


def _text(cell):
    """Everything a cell printed or displayed as text."""
    parts = []
    for output in cell.outputs:
        if output.output_type == 'stream':
            parts.append(output.text)
        elif 'data' in output:
            parts.append(output.data.get('text/markdown', '') or output.data.get('text/plain', ''))
    return ''.join(parts)


def _has_image(cell):
    return any('image/png' in output.get('data', {}) for output in cell.outputs)


def _tagged(nb, tag):
    cells = [cell for cell in nb.cells if tag in cell.metadata.get('tags', [])]
    assert len(cells) == 1, 'expected one cell tagged %r, found %d' % (tag, len(cells))
    return cells[0]


@pytest.fixture(scope='module')
def executed(tmp_path_factory):
    """The notebook after a headless run in quick mode, and its work folder."""
    assert os.path.exists(os.path.join(FASHION, 'train-images-idx3-ubyte.gz')), (
        'Fashion-MNIST is missing: run `make setup` (installs dataset-fashion-mnist)')
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    tmp = tmp_path_factory.mktemp('tutorial')
    work = tmp / 'work'
    env = dict(JUPYTER_PATH=_kernel_spec(tmp / 'jupyter'),
               JUPYTER_RUNTIME_DIR=str(tmp / 'runtime'), IPYTHONDIR=str(tmp / 'ipython'),
               TUTORIAL_QUICK='1', TUTORIAL_WORK=str(work))
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)   # read by jupyter_client now and inherited by the kernel
    try:
        nb = read_notebook()
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                                resources={'metadata': {'path': ROOT}})
        try:
            client.execute()
        except CellExecutionError as err:
            pytest.fail('the tutorial failed in a cell:\n%s' % err, pytrace=False)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return nb, work


@pytest.mark.slow
def test_notebook_runs_without_errors(executed):
    nb, _ = executed
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == 'code':
            errors = [o for o in cell.outputs if o.output_type == 'error']
            assert not errors, 'cell %d raised %s' % (index, errors[0].get('ename'))
            assert cell.execution_count is not None, 'cell %d did not run' % index


@pytest.mark.slow
def test_notebook_shows_what_a_user_expects(executed):
    nb, work = executed
    text = ''.join(_text(cell) for cell in nb.cells if cell.cell_type == 'code')

    # quick mode took effect: the slice, one epoch, the temporary folder
    assert 'epochs 1, seeds (1, 2), depth 14, data 2048 train / 1000 test images' in text
    assert str(work) in text

    # the images, the network picture with its parameter count, the curves
    assert _has_image(_tagged(nb, 'samples'))
    picture = _tagged(nb, 'network-picture')
    assert _has_image(picture)
    assert 'network parameters: 0.1547M (154,682)' in _text(picture)
    assert 'learnable parameters: 154,682' in text
    assert _has_image(_tagged(nb, 'curves'))
    assert _has_image(_tagged(nb, 'run-curves'))

    # two training runs, and the test accuracy recomputed from the checkpoint
    train = _text(_tagged(nb, 'train'))
    assert len(re.findall(r'^test accuracy [\d.]+% \(error', train, re.MULTILINE)) == 2, train
    evaluation = _text(_tagged(nb, 'evaluate'))
    match = re.search(r'recomputed here: ([\d.]+)% \((\d+) of (\d+) images\); '
                      r'the log says ([\d.]+)%', evaluation)
    assert match, evaluation
    assert int(match.group(3)) == 1000
    assert float(match.group(1)) == float(match.group(4))
    # No bar on the figure itself: quick mode trains 32 batches of one epoch, too few for an
    # accuracy worth a threshold; what is checked is that the checkpoint repeats the log.

    # get_results: one configuration of two complete runs, and its files
    results = _text(_tagged(nb, 'results'))
    assert re.search(r'cross_d14w1_1ep_2048img_run\s+2\s+[\d.]+% \([\d.]+ \+/- [\d.]+, [\d.]+\)',
                     results), results
    for name in ('results.csv', 'results.md', 'fashion-mnist_curves.png'):
        assert (work / name).is_file(), name
    folder = work / 'fashion-mnist' / 'cross'
    assert sorted(p.name for p in folder.glob('*.txt')) == [
        'cross_d14w1_1ep_2048img_run1.txt', 'cross_d14w1_1ep_2048img_run2.txt',
        'cross_d14w1_1ep_2048img_run_results.txt']
