"""--pretrained NAME in evaluate, predict, export and quantize, on a tiny entry made from a
tiny run: nothing trained, no records needed to predict, a damaged file refused."""
import json
import os

import cv2
import pytest

from inference import evaluate, export, predict, zoo_entry
from inference_helpers import fashion_slice, tiny_run
from network import zoo

NAME = 'fashion-mnist/cross_d14'
pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_zoo(tmp_path_factory, tmp_path, monkeypatch):
    run = tiny_run(tmp_path_factory, 'cross', 14)
    root = str(tmp_path / 'zoo')
    os.makedirs(root)
    with open(os.path.join(root, zoo.MANIFEST), 'w') as handle:
        json.dump(dict(entries={}), handle)
    monkeypatch.setattr(zoo, 'ROOT', root)
    monkeypatch.chdir(tmp_path)             # default outputs go under ./snapshot/pretrained
    assert zoo_entry.main([run['log'], '--commit', 'abc', '--command', 'train']) == 0
    return run, zoo.get_entry(NAME)


def test_evaluate_scores_the_entry_as_the_manifest_says(tiny_zoo, capsys):
    run, entry = tiny_zoo
    assert evaluate.main(['--pretrained', NAME, '--data-dir', run['data'],
                          '--path', 'plain']) == 0
    out = capsys.readouterr().out
    assert 'pretrained %s:' % NAME in out
    assert 'Validation-accuracy=%f' % entry['test_accuracy'] in out
    assert os.path.exists(os.path.join('snapshot', 'pretrained', NAME + '-0002.confusion.png'))


def test_predict_needs_no_records_and_names_the_classes(tiny_zoo, capsys):
    images, labels = fashion_slice('t10k', 1)
    cv2.imwrite('shirt.png', images[0])
    assert predict.main(['--pretrained', NAME, '--input', 'shirt.png', '--top', '2']) == 0
    out = capsys.readouterr().out
    assert 'shirt.png' in out and any(name in out for name in tiny_zoo[1]['classes'])


def test_export_writes_beside_nothing_it_ships(tiny_zoo, capsys, tmp_path):
    assert export.main(['--pretrained', NAME, '--no-onnx']) == 0
    written = os.listdir(os.path.join('snapshot', 'pretrained', 'fashion-mnist', 'export'))
    assert any(name.endswith('-symbol.json') for name in written)
    assert sorted(os.listdir(os.path.join(zoo.ROOT, 'fashion-mnist'))) == ['cross_d14.params']


def test_a_flipped_byte_is_one_error_line(tiny_zoo, capsys):
    path = os.path.join(zoo.ROOT, tiny_zoo[1]['file'])
    data = bytearray(open(path, 'rb').read())
    data[100] ^= 0xFF
    open(path, 'wb').write(bytes(data))
    cv2.imwrite('shirt.png', fashion_slice('t10k', 1)[0][0])
    from common.errors import run_main
    with pytest.raises(SystemExit) as code:
        run_main(predict.main, ['--pretrained', NAME, '--input', 'shirt.png'])
    err = capsys.readouterr().err
    assert code.value.code == 2 and err.count('\n') == 1 and err.startswith('error: ')
    assert tiny_zoo[1]['sha256'] in err and NAME in err


def test_pretrained_and_a_run_together_are_refused(tiny_zoo):
    from common.errors import UserError
    with pytest.raises(UserError, match='--pretrained names the network: leave out a run'):
        evaluate.main([tiny_zoo[0]['log'], '--pretrained', NAME])
