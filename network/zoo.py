"""Trained networks that ship with the project (as gluon-cv's `pretrained=True`).

`network/pretrained/manifest.json` lists the entries, e.g. `fashion-mnist/cross_d26`. Each
names its network and flags, its weights file (beside the manifest), the file's size and
sha256, the test accuracy measured on the whole test set and on its first images, what its
inputs need (shape, per-channel mean and std of 0-255 pixels, class names) and how it was
trained (commit, command, log). A weights file is read once, checked against its size and
hash, and only those checked bytes are loaded: a damaged or replaced file is refused with
one line that names the entry and the expected hash.
"""
import hashlib
import json
import os
import stat

import mxnet as mx

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pretrained')
MANIFEST = 'manifest.json'
MAX_MANIFEST_BYTES = 1 << 20

# field -> (type, what it is); every entry has them all
FIELDS = {
    'network': (str, 'the canonical network name'),
    'depth': (int, 'the depth flag'),
    'widen_factor': (int, 'the widen factor'),
    'num_classes': (int, 'the class count'),
    'dataset': (str, 'the data set it was trained on'),
    'input_shape': (list, '(channels, height, width)'),
    'mean': (list, 'per-channel mean of 0-255 pixels'),
    'std': (list, 'per-channel std of 0-255 pixels'),
    'classes': (list, 'class names'),
    'file': (str, 'the weights file, relative to the manifest'),
    'bytes': (int, 'the weights file size'),
    'sha256': (str, 'the weights file hash'),
    'test_accuracy': (float, 'top-1 on the whole test set'),
    'test_images': (int, 'test images scored'),
    'test_batch_size': (int, 'the batch size they were scored at'),
    'slice': (dict, 'top-1 on the first test images: {"images": N, "accuracy": A}'),
    'trained': (dict, 'commit, command and log of the run'),
}
# field -> (type, what it is); an entry may lack them
OPTIONAL_FIELDS = {
    'int8': (dict, 'fp32 and INT8 top-1 and their agreement (tools/zoo_int8.py)'),
}


class PretrainedError(ValueError):
    """A pretrained entry that does not exist or whose files are not what the manifest
    says (one line)."""


def _root(root):
    return ROOT if root is None else root


def read_manifest(root=None):
    """{entry name: entry} from the manifest in `root` (default: the package's), each entry
    checked against FIELDS."""
    path = os.path.join(_root(root), MANIFEST)
    data = _read_regular(path, MAX_MANIFEST_BYTES, 'the pretrained manifest')
    try:
        entries = json.loads(data.decode('utf-8'))['entries']
        if not isinstance(entries, dict):
            raise TypeError('"entries" is not an object')
    except (ValueError, KeyError, TypeError) as err:
        raise PretrainedError('the pretrained manifest %s is not valid (%s)' % (path, err))
    for name, entry in entries.items():
        _check_entry(path, name, entry)
    return entries


def _check_entry(path, name, entry):
    optional = {field: spec for field, spec in OPTIONAL_FIELDS.items()
                if isinstance(entry, dict) and field in entry}
    for field, (kind, what) in dict(FIELDS, **optional).items():
        value = entry.get(field) if isinstance(entry, dict) else None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise PretrainedError('the pretrained manifest %s: entry %s lacks a valid %r (%s)'
                                  % (path, name, field, what))
    if os.path.isabs(entry['file']) or '..' in entry['file'].split('/'):
        raise PretrainedError('the pretrained manifest %s: entry %s names a file outside its '
                              'folder (%s)' % (path, name, entry['file']))


def list_pretrained(root=None):
    """The names of the pretrained entries, sorted (e.g. 'fashion-mnist/cross_d26')."""
    return sorted(read_manifest(root))


def entry_name(dataset, network, depth, widen_factor=1):
    """The entry name of a configuration: '<dataset>/<network>_d<depth>[w<widen>]'."""
    return '%s/%s_d%d%s' % (dataset, network, depth,
                            '' if widen_factor == 1 else 'w%d' % widen_factor)


def get_entry(name, root=None):
    """The manifest's entry `name` (a dict with its 'name'); one line listing the entries
    when there is no such entry."""
    entries = read_manifest(root)
    if name not in entries:
        raise PretrainedError('no pretrained network %r; the entries are: %s'
                              % (name, ', '.join(sorted(entries)) or 'none'))
    return dict(entries[name], name=name)


def checked_weights(entry, root=None):
    """The entry's weights as {parameter name: NDArray}, from bytes whose size and sha256
    are the manifest's."""
    path = os.path.join(_root(root), entry['file'])
    data = _read_regular(path, entry['bytes'], 'the weights of pretrained %s' % entry['name'])
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != entry['bytes'] or digest != entry['sha256']:
        raise PretrainedError(
            'pretrained %s: %s is damaged or replaced (%d bytes, sha256 %s; expected %d bytes, '
            'sha256 %s); restore it from the repository (git checkout -- %s)'
            % (entry['name'], path, len(data), digest, entry['bytes'], entry['sha256'], path))
    return mx.nd.load_frombuffer(data)


def load_weights(net, entry, ctx=None, root=None):
    """Give `net` (initialised, shapes known) the entry's checked weights."""
    weights = checked_weights(entry, root)
    wanted = net._collect_params_with_prefix()
    if set(weights) != set(wanted):
        raise PretrainedError('pretrained %s does not fit the network: %d parameters differ'
                              % (entry['name'], len(set(weights) ^ set(wanted))))
    for key, param in wanted.items():
        if tuple(weights[key].shape) != tuple(param.shape):
            raise PretrainedError('pretrained %s does not fit the network: %s is %s, the '
                                  'network\'s %s' % (entry['name'], key,
                                                     tuple(weights[key].shape), param.shape))
        param.set_data(weights[key].as_in_context(ctx or mx.cpu()))
    return net


def _read_regular(path, limit, what):
    """The bytes of the regular file `path`, refused when larger than `limit`."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | os.O_NONBLOCK)
    except OSError as err:
        raise PretrainedError('%s: cannot read %s (%s)' % (what, path, err.strerror))
    with os.fdopen(fd, 'rb') as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise PretrainedError('%s: %s is not a regular file' % (what, path))
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PretrainedError('%s: %s is larger than the %d bytes expected' % (what, path, limit))
    return data
