"""Where a run's files go, and writing them so that nothing is ever half-written or lost.

Layout (TRAINING.md):
  <log-dir>/<dataset>[_noaug]/<network>/<network>_d<depth>w<widen>_<exp><run>.txt   the log
  ... beside it <log name>.metrics.jsonl                                        per-epoch metrics
  <log-dir>/<dataset>[_noaug]/<network>/weights/<log name>/<log name>-<epoch:04d>.params
The weights sit under the same <dataset>[_noaug] folder as the log, so that runs with and
without augmentation never share a weights folder.
"""
import contextlib
import glob
import os
import pickle
import re

from common.errors import UserError


def config_dir(log_dir, dataset, aug_type, network):
    dataset_folder = dataset + ('_noaug' if aug_type == 0 else '')
    return os.path.join(log_dir, dataset_folder, network)


def config_stem(network, depth, widen_factor, exp_name):
    """The log name without its run number, e.g. cross_d56w1_exp."""
    return '%s_d%dw%d_%s' % (network, depth, widen_factor, exp_name or 'exp')


def claim_log_path(folder, stem):
    """Create and return the log of the first free run number.

    O_EXCL makes the claim atomic: two runs started at the same moment get different
    numbers, and an existing log is never opened for writing.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UserError('cannot create the snapshot folder %s (%s); pass a writable --log-dir'
                        % (folder, err.strerror))
    run = 1
    while True:
        path = os.path.join(folder, '%s%d.txt' % (stem, run))
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            run += 1
            continue
        except OSError as err:
            raise UserError('cannot write the log %s (%s); pass a writable --log-dir'
                            % (path, err.strerror))
        os.close(fd)
        return path


def run_logs(folder, stem):
    """Existing logs of one configuration, oldest run first."""
    pattern = re.compile(re.escape(stem) + r'(\d+)\.txt$')
    found = []
    for path in glob.glob(os.path.join(glob.escape(folder), stem + '*.txt')):
        match = pattern.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def log_name(log_path):
    return os.path.splitext(os.path.basename(log_path))[0]


def metrics_path(log_path):
    return os.path.splitext(log_path)[0] + '.metrics.jsonl'


def weights_prefix(log_path):
    """<folder of the log>/weights/<log name>/<log name>"""
    name = log_name(log_path)
    return os.path.join(os.path.dirname(log_path), 'weights', name, name)


def log_of_prefix(prefix):
    """The log a weights prefix belongs to, when it follows the layout; else None."""
    name = os.path.basename(prefix)
    weights_folder = os.path.dirname(os.path.dirname(prefix))
    if os.path.basename(weights_folder) != 'weights':
        return None
    path = os.path.join(os.path.dirname(weights_folder), name + '.txt')
    return path if os.path.exists(path) else None


@contextlib.contextmanager
def scratch_path(path, tag='tmp'):
    """A hidden file name beside `path`, removed afterwards whatever happens."""
    temp = os.path.join(os.path.dirname(path) or '.',
                        '.%s.%s%d' % (os.path.basename(path), tag, os.getpid()))
    try:
        yield temp
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def atomic_write(path, write):
    """Call write(temp_path), then rename onto `path`: readers never see a partial file."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with scratch_path(path) as temp:
        write(temp)
        with open(temp, 'rb') as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)


# A checkpoint is two files: <prefix>-<epoch>.params (the weights, as the original wrote
# them) and <prefix>-<epoch>.state (optimizer states, epoch, batch count, seed). The state
# file is written last, so a checkpoint counts only when both are there.

def params_file(prefix, epoch):
    return '%s-%04d.params' % (prefix, epoch)


def state_file(prefix, epoch):
    return '%s-%04d.state' % (prefix, epoch)


def save_checkpoint(prefix, epoch, net, trainer, meta):
    """Epoch `epoch` = that many epochs done."""
    atomic_write(params_file(prefix, epoch), net.save_parameters)
    with scratch_path(state_file(prefix, epoch), 'optimizer') as temp:  # Trainer needs a file
        trainer.save_states(temp)
        with open(temp, 'rb') as handle:
            optimizer_states = handle.read()
    payload = dict(meta, epoch=epoch, optimizer_states=optimizer_states)

    def write(path):
        with open(path, 'wb') as handle:
            pickle.dump(payload, handle, protocol=4)
    atomic_write(state_file(prefix, epoch), write)


def checkpoint_epochs(prefix):
    """Epochs with a complete checkpoint (both files), ascending."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r'-(\d{4,})\.state$')
    epochs = []
    for path in glob.glob(glob.escape(prefix) + '-*.state'):
        match = pattern.match(os.path.basename(path))
        if match and os.path.exists(params_file(prefix, int(match.group(1)))):
            epochs.append(int(match.group(1)))
    return sorted(epochs)


def read_state(prefix, epoch):
    """The saved meta dictionary of a checkpoint (epoch, batch count, seed, ...)."""
    try:
        with open(state_file(prefix, epoch), 'rb') as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError) as err:
        raise UserError('cannot read the checkpoint %s (%s)' % (state_file(prefix, epoch), err))


def load_checkpoint(prefix, epoch, net, trainer, ctx):
    """Restore weights and optimizer states; return the saved meta dictionary."""
    params, state = params_file(prefix, epoch), state_file(prefix, epoch)
    for path in (params, state):
        if not os.path.exists(path):
            have = checkpoint_epochs(prefix)
            raise UserError('no checkpoint %s; checkpoints of %s: %s' % (
                path, prefix, ', '.join(map(str, have)) if have else 'none'))
    payload = read_state(prefix, epoch)
    try:
        net.load_parameters(params, ctx=ctx)
    except Exception as err:  # MXNetError or a shape mismatch: a corrupt or foreign file
        raise UserError('cannot load the weights %s (%s)' % (params, str(err).splitlines()[0]))
    with scratch_path(state, 'optimizer') as temp:
        with open(temp, 'wb') as handle:
            handle.write(payload.pop('optimizer_states'))
        trainer.load_states(temp)
    return payload
