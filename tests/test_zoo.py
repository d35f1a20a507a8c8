"""The model zoo's mechanism (network/zoo.py) on a tiny entry of its own: list, load and
check; every damaged file refused with one line before anything is loaded."""
import hashlib
import json
import os

import mxnet as mx
import numpy as np
import pytest

import network
from network import zoo

ENTRY = 'tiny/resnet_d8'


def _save_tiny(root):
    """A resnet d8 with drawn weights saved as a zoo entry in `root`; returns the network
    and the entry."""
    mx.random.seed(5)
    net = network.get_net('resnet', depth=8, num_classes=4)
    network.initialize(net, (1, 12, 12))
    os.makedirs(os.path.join(root, 'tiny'))
    path = os.path.join(root, 'tiny', 'resnet_d8.params')
    net.save_parameters(path)
    data = open(path, 'rb').read()
    entry = dict(network='resnet', depth=8, widen_factor=1, num_classes=4, dataset='tiny',
                 input_shape=[1, 12, 12], mean=[0.0], std=[1.0], classes=list('abcd'),
                 file='tiny/resnet_d8.params', bytes=len(data),
                 sha256=hashlib.sha256(data).hexdigest(), test_accuracy=0.5, test_images=8, test_batch_size=4,
                 slice=dict(images=4, accuracy=0.5),
                 trained=dict(commit='0' * 40, command='none', log='none'))
    _write_manifest(root, {ENTRY: entry})
    return net, entry


def _write_manifest(root, entries):
    with open(os.path.join(root, zoo.MANIFEST), 'w') as handle:
        json.dump(dict(entries=entries), handle)


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    root = str(tmp_path / 'zoo')
    os.makedirs(root)
    net, entry = _save_tiny(root)
    monkeypatch.setattr(zoo, 'ROOT', root)
    return root, net, entry


def test_an_entry_loads_as_the_network_it_was_saved_from(tiny_zoo):
    _, saved, _ = tiny_zoo
    assert network.list_pretrained() == [ENTRY]
    x = mx.nd.random.uniform(shape=(3, 1, 12, 12))
    for loaded in (network.get_net('resnet', depth=8, pretrained='tiny'),
                   network.get_net('resnet', pretrained=ENTRY)):
        np.testing.assert_array_equal(loaded(x).asnumpy(), saved(x).asnumpy())


def test_a_flipped_byte_is_refused_naming_the_entry_and_the_hash(tiny_zoo):
    root, _, entry = tiny_zoo
    path = os.path.join(root, entry['file'])
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 1
    open(path, 'wb').write(bytes(data))
    with pytest.raises(network.PretrainedError) as err:
        network.get_net('resnet', depth=8, pretrained='tiny')
    message = str(err.value)
    assert '\n' not in message
    assert ENTRY in message and entry['sha256'] in message and 'damaged or replaced' in message


@pytest.mark.parametrize('damage, words', [
    ('truncate', 'expected %d bytes'),
    ('grow', 'larger than the %d bytes expected'),
    ('remove', 'cannot read'),
    ('fifo', 'not a regular file'),
    ('symlink', 'cannot read'),
])
def test_a_weights_file_that_is_not_the_entrys_is_refused(tiny_zoo, tmp_path, damage, words):
    root, _, entry = tiny_zoo
    path = os.path.join(root, entry['file'])
    data = open(path, 'rb').read()
    os.remove(path)
    if damage == 'truncate':
        open(path, 'wb').write(data[:-10])
    elif damage == 'grow':
        open(path, 'wb').write(data + b'\0' * 10)
    elif damage == 'fifo':
        os.mkfifo(path)               # reading it would block forever
    elif damage == 'symlink':          # the same bytes, through a link
        other = str(tmp_path / 'elsewhere.params')
        open(other, 'wb').write(data)
        os.symlink(other, path)
    with pytest.raises(network.PretrainedError,
                       match=words % entry['bytes'] if '%d' in words else words):
        network.get_net('resnet', depth=8, pretrained='tiny')


def test_unknown_entries_and_mismatches_name_what_exists(tiny_zoo):
    with pytest.raises(network.PretrainedError, match=r"no pretrained network 'tiny/resnet_d14'"
                                                      r"; the entries are: tiny/resnet_d8"):
        network.get_net('resnet', depth=14, pretrained='tiny')
    with pytest.raises(network.PretrainedError, match='is a resnet with 4 classes, not a cross'):
        network.get_net('cross', pretrained=ENTRY)
    with pytest.raises(network.PretrainedError, match='not a resnet with 10'):
        network.get_net('resnet', num_classes=10, pretrained=ENTRY)


@pytest.mark.parametrize('edit, words', [
    (lambda e: e.pop('sha256'), "lacks a valid 'sha256'"),
    (lambda e: e.update(bytes='12'), "lacks a valid 'bytes'"),
    (lambda e: e.update(file='../../etc/passwd'), 'names a file outside its folder'),
    (lambda e: e.update(file='/etc/passwd'), 'names a file outside its folder'),
    (lambda e: e.update(int8=[0.9]), "lacks a valid 'int8'"),
])
def test_an_edited_manifest_is_refused_with_one_line(tiny_zoo, edit, words):
    root, _, entry = tiny_zoo
    edit(entry)
    _write_manifest(root, {ENTRY: entry})
    with pytest.raises(network.PretrainedError, match=words):
        network.list_pretrained()


def test_a_manifest_that_is_not_json_is_refused(tiny_zoo):
    root = tiny_zoo[0]
    open(os.path.join(root, zoo.MANIFEST), 'w').write('{"entries": [')
    with pytest.raises(network.PretrainedError, match='is not valid'):
        network.list_pretrained()


@pytest.mark.slow
def test_a_finished_run_becomes_an_entry_that_loads_as_its_checkpoint(tmp_path_factory,
                                                                      tmp_path, monkeypatch):
    from engine.logs import read_metrics
    from engine.runfiles import metrics_path
    from inference import zoo_entry
    from inference.checkpoint import find_checkpoint
    from inference.model import load_net
    from inference_helpers import tiny_run
    run = tiny_run(tmp_path_factory, 'cross', 14)
    root = str(tmp_path / 'zoo')
    os.makedirs(root)
    _write_manifest(root, {})
    monkeypatch.setattr(zoo, 'ROOT', root)
    assert zoo_entry.main([run['log'], '--commit', 'abc', '--command', 'train']) == 0
    name = 'fashion-mnist/cross_d14'
    entry = zoo.get_entry(name)
    assert entry['test_accuracy'] == read_metrics(metrics_path(run['log']))[-1].val_acc
    assert entry['test_images'] == 200 and entry['slice']['images'] == 1000
    assert entry['trained'] == dict(commit='abc', command='train', log=run['log'], epochs=2,
                                    seed=5)
    x = mx.nd.random.uniform(shape=(2, 1, 28, 28))
    expected = load_net(find_checkpoint(run['log']))(x).asnumpy()
    np.testing.assert_array_equal(network.get_net('cross', depth=14,
                                                  pretrained='fashion-mnist')(x).asnumpy(),
                                  expected)
    # a run that is not finished is refused
    unfinished = find_checkpoint(run['log'], 1)
    with pytest.raises(Exception, match='is not finished'):
        zoo_entry.entry_of(unfinished, zoo_entry.build_parser().parse_args(
            [run['log'], '--commit', 'abc', '--command', 'train', '--name', name]),
            b'', (0.5, 0.5, 200, 64))
