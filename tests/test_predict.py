"""tools/predict.py: images are prepared as training's records are, and named by class."""
import csv
import io
import json
import os

import cv2
import numpy as np
import pytest

from data.fashion_mnist import CLASSES
from helpers import assert_one_line_error
from inference_helpers import fashion_slice, run_tool, tiny_run

pytestmark = pytest.mark.slow   # every test here trains or starts a process

COUNT = 4


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope='module')
def pictures(tmp_path_factory):
    """The first test images as PNG files, and the same images enlarged, in colour, and
    inside a wider frame: every form must come back to the record's 28x28 grey pixels."""
    folder = tmp_path_factory.mktemp('pictures')
    images, _ = fashion_slice('t10k', COUNT)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / ('%d.png' % i)), image)
    variants = tmp_path_factory.mktemp('variants')
    first = images[0]
    cv2.imwrite(str(variants / 'a_twice.png'), np.repeat(np.repeat(first, 2, 0), 2, 1))
    cv2.imwrite(str(variants / 'b_colour.png'), np.dstack([first] * 3))
    cv2.imwrite(str(variants / 'c_wide.png'), np.pad(first, ((0, 0), (6, 6))))
    return str(folder), str(variants)


def predict_json(*argv):
    proc = run_tool('predict', *argv, '--format', 'json', '--path', 'plain')
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_image_files_predict_what_their_records_predict(run, pictures):
    folder, _ = pictures
    # one batch size for both: the same images in the same batch (oneDNN's sums may round
    # differently for another batch size, by 1e-6 with one thread)
    from_records = predict_json(run['log'], '-i', os.path.join(run['data'], 'test.rec'),
                                '-k', '10', '--batch-size', COUNT)[:COUNT]
    from_files = predict_json(run['log'], '-i', folder, '-k', '10', '--batch-size', COUNT)
    assert [row['image'] for row in from_files] == [os.path.join(folder, '%d.png' % i)
                                                    for i in range(COUNT)]
    for record, image in zip(from_records, from_files):
        assert [t['name'] for t in image['top']] == [t['name'] for t in record['top']]
        assert [t['probability'] for t in image['top']] == pytest.approx(
            [t['probability'] for t in record['top']], abs=1e-6)
        assert record['label'] in CLASSES and 'label' not in image
        assert sum(t['probability'] for t in image['top']) == pytest.approx(1, abs=1e-5)


def test_other_sizes_and_colour_images_become_the_training_pixels(run, pictures):
    folder, variants = pictures
    original = predict_json(run['log'], '-i', os.path.join(folder, '0.png'), '-k', '10')[0]
    for row in predict_json(run['log'], '-i', variants, '-k', '10'):
        assert [t['probability'] for t in row['top']] == pytest.approx(
            [t['probability'] for t in original['top']], abs=1e-6), row['image']


def test_table_and_csv_list_the_top_k_best_first(run, pictures, tmp_path):
    folder, _ = pictures
    table = run_tool('predict', run['log'], '-i', folder, '-k', '2')
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == COUNT and lines[0].startswith(os.path.join(folder, '0.png'))
    assert 'inference path' in table.stderr  # stdout holds only the predictions
    out = tmp_path / 'new-folder' / 'top.csv'   # the folder is made
    proc = run_tool('predict', run['log'], '-i', folder, '-k', '3', '--format', 'csv', '--out', out)
    assert proc.returncode == 0 and proc.stdout == ''
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == COUNT
    for row in rows:
        probabilities = [float(row['probability%d' % i]) for i in (1, 2, 3)]
        assert probabilities == sorted(probabilities, reverse=True)
        assert row['class1'] in CLASSES and row['class1'] in lines[rows.index(row)]


def test_bad_images_and_inputs_are_one_line_errors(run, pictures, tmp_path):
    folder, _ = pictures
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not an image')
    assert_one_line_error(run_tool('predict', run['log'], '-i', folder, broken),
                          'cannot read', 'broken.png')
    assert_one_line_error(run_tool('predict', run['log'], '-i', tmp_path / 'gone.png'),
                          'gone.png', 'not found')
    assert_one_line_error(run_tool('predict', run['log'], '-i', folder,
                                   os.path.join(run['data'], 'test.rec')), '.rec')
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert_one_line_error(run_tool('predict', run['log'], '-i', empty), 'no images')
    assert_one_line_error(run_tool('predict', run['log'], '-i', folder, '--out', broken / 'x.csv'),
                          '--out', 'a file stands where')
