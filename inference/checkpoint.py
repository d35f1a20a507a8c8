"""Which checkpoint a user means, and the flags of the run that wrote it.

A run's files (see the README's "Outputs"):
    <folder>/<name>.txt                              the log; its 2nd line holds the flags
    <folder>/weights/<name>/<name>-<epoch:04d>.params
A user may name the log, the weights folder, or a weights prefix with an epoch.
"""
import glob
import os
import re
from dataclasses import dataclass

from common.errors import UserError
from common.reading import open_regular
from data.datasets import DATASETS
from engine.checkpoint import params_file
from engine.logs import HEAD_LIMIT, parse_namespace
from engine.runfiles import weights_prefix

HEAD_MARK = 'start with arguments Namespace('


@dataclass
class Checkpoint:
    prefix: str
    epoch: int
    flags: dict

    @property
    def params_path(self):
        return params_file(self.prefix, self.epoch)

    @property
    def name(self):
        return '%s-%04d' % (os.path.basename(self.prefix), self.epoch)


def saved_epochs(prefix):
    """Epochs with a weights file under `prefix`, ascending."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r'-(\d{4,})\.params$')
    found = (pattern.match(os.path.basename(p))
             for p in glob.glob(glob.escape(prefix) + '-*.params'))
    return sorted(int(m.group(1)) for m in found if m)


def _prefix_of(path):
    """A log, a weights folder or a prefix -> (weights prefix, log path)."""
    path = os.path.normpath(path)
    if path.endswith('.txt'):
        return weights_prefix(path), path
    if os.path.isdir(path):
        path = os.path.join(path, os.path.basename(path))
    name = os.path.basename(path)
    run_folder = os.path.dirname(os.path.dirname(os.path.dirname(path)))  # above weights/
    return path, os.path.join(run_folder, name + '.txt')


def run_flags(log_path):
    """The flags a run was started with, read from its log's `start with arguments` line.

    The one place that reads a run's settings: logs of every version keep this line.
    """
    try:   # its head only: a log of one endless line must not be read whole
        with open_regular(log_path, what="the run's log") as handle:
            head = handle.read(HEAD_LIMIT).decode('utf-8', 'replace').splitlines()[:5]
    except OSError as err:
        raise UserError('cannot read the run\'s log %s (%s): the network and its flags come '
                        'from it' % (log_path, err.strerror))
    for line in head:
        if HEAD_MARK in line:
            flags = parse_namespace(line)   # the log module's own reader of that line
            if flags:
                check_flags(log_path, flags)
                return flags
            break
    raise UserError('%s has no readable `start with arguments Namespace(...)` line: it is '
                    'not a training log of this project' % log_path)


def _count(low):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low,
            'a whole number >= %d' % low)


# flag -> (check, what it must be): every flag of the head that inference uses
NEEDED_FLAGS = {
    'network': (lambda v: isinstance(v, str) and v != '', 'a network name'),
    'depth': _count(1), 'widen_factor': _count(1), 'num_classes': _count(1),
    'data_shape': _count(1),
    'dataset': (lambda v: v in DATASETS, 'one of %s' % ', '.join(sorted(DATASETS))),
    'aug_type': (lambda v: v in (0, 1, 2) and not isinstance(v, bool), '0, 1 or 2'),
    'data_dir': (lambda v: isinstance(v, str) and v != '', 'a folder'),
    'val_dataset': (lambda v: isinstance(v, str) and v != '', 'a record file name'),
}
OPTIONAL_FLAGS = {'test_batch_size': _count(1)}


def check_flags(log_path, flags):
    """One line naming the first flag inference needs that the head lacks or spoils (a
    head edited by hand would otherwise end in a KeyError far from its cause)."""
    for name, (check, wanted) in list(NEEDED_FLAGS.items()) + list(OPTIONAL_FLAGS.items()):
        if name not in flags:
            if name in OPTIONAL_FLAGS:
                continue
            raise UserError('the log %s has no %s in its `start with arguments` line, which '
                            'inference needs: its head was edited or cut' % (log_path, name))
        if not check(flags[name]) and not (name in OPTIONAL_FLAGS and flags[name] is None):
            raise UserError('the log %s gives %s=%.60r in its `start with arguments` line; '
                            'it must be %s' % (log_path, name, flags[name], wanted))


def find_checkpoint(path, epoch=None):
    """The checkpoint `path` names (a log, a weights folder or a prefix), at `epoch` or the
    latest saved one, with its run's flags."""
    prefix, log_path = _prefix_of(path)
    epochs = saved_epochs(prefix)
    if not epochs:
        raise UserError('no weights %s-<epoch>.params: pass a run\'s log, its weights folder, '
                        'or --checkpoint PREFIX --epoch N' % prefix)
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise UserError('no checkpoint %s-%04d.params; saved epochs: %s'
                        % (prefix, epoch, ', '.join(map(str, epochs))))
    return Checkpoint(prefix, epoch, run_flags(log_path))
