"""The trained networks that ship (network/pretrained/manifest.json): every file is what the
manifest says, and an entry scores the manifest's accuracy on the real Fashion-MNIST test
set, by the command a user runs."""
import os

import pytest

import network
from data.synthetic import write_record_dataset
from inference_helpers import fashion_slice, run_tool
from network import zoo

ENTRIES = network.list_pretrained()
CHECKED = 'fashion-mnist/cross_d26'   # the entry evaluated on the real test set


@pytest.mark.parametrize('name', ENTRIES)
def test_each_shipped_file_is_the_one_the_manifest_names(name):
    entry = zoo.get_entry(name)
    weights = zoo.checked_weights(entry)           # size and sha256, or PretrainedError
    assert len(weights) > 0
    assert entry['test_images'] == 10000 and entry['trained']['epochs'] == 10
    assert os.path.exists(entry['trained']['log'])


@pytest.fixture(scope='module')
def test_records(tmp_path_factory):
    """The 10,000 official test images as records (training records: a few, unused)."""
    folder = str(tmp_path_factory.mktemp('fashion') / 'data')
    write_record_dataset(folder, 'fashion-mnist', fashion_slice('train', 64),
                         fashion_slice('t10k', 10000))
    return folder


@pytest.mark.slow
def test_an_entry_scores_its_manifest_accuracy_on_the_real_test_set(test_records, tmp_path):
    entry = zoo.get_entry(CHECKED)
    proc = run_tool('evaluate', '--pretrained', CHECKED, '--data-dir', test_records,
                    '--path', 'plain', '--png', tmp_path / 'confusion.png')
    assert proc.returncode == 0, proc.stderr
    assert 'Validation-accuracy=%f' % entry['test_accuracy'] in proc.stdout
    assert ': 10000 images' in proc.stdout


@pytest.mark.slow
def test_predict_with_a_shipped_network_needs_nothing_else(tmp_path):
    import cv2
    images, labels = fashion_slice('t10k', 3)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / ('image%d.png' % i)))
        cv2.imwrite(paths[-1], image)
    proc = run_tool('predict', '--pretrained', CHECKED, '--input', *paths, '--top', '1',
                    '--format', 'csv', '--out', tmp_path / 'top.csv')
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / 'top.csv').read_text().splitlines()[1:]
    classes = zoo.get_entry(CHECKED)['classes']
    predicted = [row.split(',')[2] for row in rows]
    assert len(predicted) == 3 and all(name in classes for name in predicted)
    # a trained network gets these three right (Ankle boot, Pullover, Trouser)
    assert predicted == [classes[label] for label in labels]


@pytest.mark.parametrize('name', ENTRIES)
def test_each_entry_records_its_int8_figures(name):
    entry = zoo.get_entry(name)
    int8 = entry['int8']
    assert int8['images'] == entry['test_images'] and int8['slice']['images'] == 1000
    assert int8['fp32_accuracy'] == entry['test_accuracy']
    assert int8['sum_fusion'] == 'on' and int8['keep_fp32'] == ['first']


@pytest.fixture(scope='module')
def slice_records(tmp_path_factory):
    """The manifest's slice of the test set, and the 640 training images calibration
    reads (the first 10 batches of 64, as data.prepare orders them)."""
    folder = str(tmp_path_factory.mktemp('fashion-slice') / 'data')
    write_record_dataset(folder, 'fashion-mnist', fashion_slice('train', 640),
                         fashion_slice('t10k', zoo.get_entry(CHECKED)['slice']['images']))
    return folder


@pytest.mark.slow
def test_an_entrys_int8_figures_are_measured_again_on_its_slice(slice_records):
    from inference.zoo_int8 import markdown_row
    proc = run_tool('zoo_int8', CHECKED, '--data-dir', slice_records)
    assert proc.returncode == 0, proc.stderr
    assert markdown_row(CHECKED, zoo.get_entry(CHECKED)['int8']['slice']) in proc.stdout
