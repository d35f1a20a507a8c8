"""Where a run's files go (the one home of the layout), and the files of one run.

Layout (docs/layout.md):
  <log-dir>/<dataset>[_noaug]/<network>/<network>_d<depth>w<widen>_<exp><run>.txt   the log
  ... beside it <log name>.metrics.jsonl                                        per-epoch metrics
  <log-dir>/<dataset>[_noaug]/<network>/weights/<log name>/<log name>-<epoch:04d>.params
The weights sit under the same <dataset>[_noaug] folder as the log, so that runs with and
without augmentation never share a weights folder.
"""
import glob
import os

from common.errors import UserError
from engine.checkpoint import checkpoint_epochs, params_file


def config_dir(log_dir, dataset, aug_type, network):
    dataset_folder = dataset + ('_noaug' if aug_type == 0 else '')
    return os.path.join(log_dir, dataset_folder, network)


def config_stem(network, depth, widen_factor, exp_name):
    """The log name without its run number, e.g. cross_d56w1_exp."""
    return '%s_d%dw%d_%s' % (network, depth, widen_factor, exp_name or 'exp')


def run_log_name(stem, run):
    """The log name of run number `run`, e.g. cross_d56w1_exp3: the one place it is spelt."""
    return '%s%d' % (stem, run)


def split_run_number(name, stem):
    """`run_log_name(stem, run)` -> run; None when `name` is not a run of `stem`."""
    rest = name[len(stem):] if name.startswith(stem) else ''
    return int(rest) if rest.isdigit() else None


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
        path = os.path.join(folder, run_log_name(stem, run) + '.txt')
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
    found = []
    for path in glob.glob(os.path.join(glob.escape(folder), stem + '*.txt')):
        run = split_run_number(log_name(path), stem)
        if run is not None:
            found.append((run, path))
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


class RunFiles:
    """The log, metrics and weights of one run; only rank 0 writes them.

    --resume continues the latest run in its own files: its latest checkpoint is the newest,
    so nothing is overwritten. --load-epoch N starts a new run from another run's
    checkpoint N: the other run's later checkpoints and log lines stay as they are, and the
    new log and metrics begin with a copy of its epochs before N, so they read as one run.
    """

    def __init__(self, folder, stem, rank, resume=False, load_epoch=None, model_prefix=None):
        self.rank = rank
        self.folder, self.stem = folder, stem
        self.log_path = self.prefix = None
        self.source_prefix = model_prefix  # the checkpoint to start from
        self.source_log = None             # --load-epoch: the log to copy epochs from
        self.start_epoch = 0
        if resume:
            self._find_latest()
        elif load_epoch is not None:
            self._find_prefix(load_epoch)

    @property
    def resuming(self):
        """True when the weights come from a checkpoint (--resume or --load-epoch)."""
        return self.start_epoch > 0

    @property
    def metrics_path(self):
        return metrics_path(self.log_path) if self.log_path else None

    def claim(self):
        """Create the log of a new run (rank 0); a resumed run appends to its own."""
        if self.log_path is None and self.rank == 0:
            self.log_path = claim_log_path(self.folder, self.stem)
        if self.prefix is None and self.log_path is not None:
            self.prefix = weights_prefix(self.log_path)

    def _find_latest(self):
        for log_path in reversed(run_logs(self.folder, self.stem)):
            prefix = weights_prefix(log_path)
            epochs = checkpoint_epochs(prefix)
            if epochs:
                self.log_path, self.prefix, self.start_epoch = log_path, prefix, epochs[-1]
                self.source_prefix = prefix
                return
        if self.rank > 0:  # a distributed run: rank 0 may see checkpoints this one cannot
            raise UserError("--resume: worker %d sees no checkpoint of %s<run> in %s; rank "
                            "0's snapshot folder (--log-dir) must be on a file system every "
                            'machine shares' % (self.rank, self.stem, self.folder))
        raise UserError('--resume: no checkpoint of %s%s in %s; start a new run without '
                        '--resume' % (self.stem, '<run>', self.folder))

    def _find_prefix(self, epoch):
        if self.source_prefix is None:
            logs_found = run_logs(self.folder, self.stem)
            if not logs_found:
                raise UserError('--load-epoch %d: no run of %s in %s; pass --model-prefix'
                                % (epoch, self.stem, self.folder))
            self.source_prefix = weights_prefix(logs_found[-1])
        have = checkpoint_epochs(self.source_prefix)
        if epoch not in have:
            raise UserError('--load-epoch %d: no checkpoint %s; saved epochs: %s' % (
                epoch, params_file(self.source_prefix, epoch),
                ', '.join(map(str, have)) or 'none'))
        self.start_epoch = epoch
        self.source_log = log_of_prefix(self.source_prefix)
