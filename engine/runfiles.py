"""Where a run's files go (the one home of the layout), and the files of one run.

Layout (docs/layout.md):
  <log-dir>/<dataset>[_noaug]/<network>/<network>_d<depth>w<widen>_<exp><run>.txt   the log
  ... beside it <log name>.metrics.jsonl                                        per-epoch metrics
  <log-dir>/<dataset>[_noaug]/<network>/weights/<log name>/<log name>-<epoch:04d>.params
The weights sit under the same <dataset>[_noaug] folder as the log, so that runs with and
without augmentation never share a weights folder.
"""
import glob
import json
import os

from common.errors import UserError
from engine import flags, recipe_flags
from engine.checkpoint import checkpoint_epochs, params_file, read_state
from engine.lock import RunLock, lock_path

# Flags a resumed run may change, each module's rule beside the flags it governs; every
# other flag, present and future, must match the checkpoint's.
MAY_CHANGE = flags.MAY_CHANGE_ON_RESUME | recipe_flags.MAY_CHANGE_ON_RESUME
FLAG_NAMES = {'lr_step_epochs': 'lr-steps'}
# Training flags added after checkpoints were written, and the value a checkpoint without
# them trained with: each module's, beside its flags.
ABSENT_MEANT = dict(flags.ABSENT_MEANT, **recipe_flags.ABSENT_MEANT)


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

    A number is free when no file of its run exists (run_paths: a run whose log was
    deleted keeps its checkpoints, and its metrics must not become a new run's). O_EXCL
    makes the claim atomic: two runs started at the same moment get different numbers, and
    an existing log (or a link planted in its place) is never opened for writing.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UserError('cannot create the snapshot folder %s (%s); pass a writable --log-dir'
                        % (folder, err.strerror))
    run = 1
    while True:
        path = os.path.join(folder, run_log_name(stem, run) + '.txt')
        run += 1
        if any(os.path.lexists(taken) for taken in run_paths(path)[1:]):
            continue
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            continue
        except OSError as err:
            raise UserError('cannot write the log %s (%s); pass a writable --log-dir'
                            % (path, err.strerror))
        os.close(fd)
        return path


def run_paths(log_path):
    """Every file of the run whose log is `log_path`: the log, its metrics, its lock and
    its weights folder. A run number whose files all are absent is free."""
    return [log_path, metrics_path(log_path), lock_path(log_path),
            os.path.dirname(weights_prefix(log_path))]


def is_run_of(log_path, stem):
    """The one rule for which logs are runs of a configuration (resume, --load-epoch, the
    sweep, get_results' grouping): the name is `stem` and a run number, and the head, once
    written, names that configuration. The name alone is ambiguous when --exp-name ends
    in a digit: `a` + run 11 and `a1` + run 1 are both `..._a11`."""
    if split_run_number(log_name(log_path), stem) is None:
        return False
    named = head_stem(log_path)
    return named is None or named == stem


def head_stem(log_path):
    """The configuration stem the log's head names; None when it names none (a log cut
    before its head, a 2016 log without its flags)."""
    from engine.logs import read_head_args   # engine.logs reads the layout from here
    args = read_head_args(log_path)
    try:
        return config_stem(args['network'], args['depth'], args['widen_factor'],
                           args.get('exp_name'))
    except (KeyError, TypeError):
        return None


def run_logs(folder, stem):
    """Existing logs of one configuration (is_run_of), oldest run first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(folder), glob.escape(stem) + '*.txt')):
        if is_run_of(path, stem):
            found.append((split_run_number(log_name(path), stem), path))
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
        self.state = None                  # the checked state of the source checkpoint
        self.run_lock = None
        self.claimed = False               # this process created the log
        if resume:
            self._find_latest()
        elif load_epoch is not None:
            self._find_prefix(load_epoch)
        if self.resuming:
            self.state = read_state(self.source_prefix, self.start_epoch)

    @property
    def resuming(self):
        """True when the weights come from a checkpoint (--resume or --load-epoch)."""
        return self.start_epoch > 0

    @property
    def metrics_path(self):
        return metrics_path(self.log_path) if self.log_path else None

    def claim(self):
        """Create the log of a new run (rank 0) and lock it; a resumed run appends to its
        own, locked by lock() already."""
        if self.log_path is None and self.rank == 0:
            self.log_path = claim_log_path(self.folder, self.stem)
            self.claimed = True
        if self.prefix is None and self.log_path is not None:
            self.prefix = weights_prefix(self.log_path)
        self.lock()

    def abandon(self):
        """A new run that failed to start (a full disk): remove the log it claimed, which
        holds at most its head, so that nothing of it reads as a run."""
        if self.claimed:
            for path in (self.log_path, self.metrics_path):
                if os.path.exists(path):
                    os.remove(path)

    def lock(self):
        """Rank 0 holds its run from here to release(): a second process gets an error."""
        if self.rank == 0 and self.log_path is not None and self.run_lock is None:
            self.run_lock = RunLock(self.log_path).acquire()

    def release(self):
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None

    def check_continuation(self, args):
        """Refuse a start that trains nothing, and a --resume with other training flags."""
        if not self.resuming:
            return
        if self.start_epoch >= args.num_epochs:
            raise UserError('nothing to train: the checkpoint %s is after epoch %d and '
                            '--num-epochs is %d; pass a larger --num-epochs' % (
                                params_file(self.source_prefix, self.start_epoch),
                                self.start_epoch, args.num_epochs))
        if self.log_path is not None and args.resume:
            changes = changed_flags(self.state, vars(args))
            if changes:
                raise UserError('--resume: the run %s was trained with other flags: %s; '
                                'resume with its flags, or start a new run'
                                % (self.log_path, '; '.join(changes)))

    def _find_latest(self):
        """The latest run of the configuration and its latest checkpoint: never an older
        run, which would change a finished run's result."""
        found = run_logs(self.folder, self.stem)
        epochs = checkpoint_epochs(weights_prefix(found[-1])) if found else []
        if epochs:
            self.log_path, self.prefix = found[-1], weights_prefix(found[-1])
            self.start_epoch, self.source_prefix = epochs[-1], self.prefix
            return
        if self.rank > 0:  # a distributed run: rank 0 may see checkpoints this one cannot
            raise UserError("--resume: worker %d sees no checkpoint of %s<run> in %s; rank "
                            "0's snapshot folder (--log-dir) must be on a file system every "
                            'machine shares' % (self.rank, self.stem, self.folder))
        if found:
            raise UserError('--resume: the latest run %s has no checkpoint (it stopped before '
                            'its first one), and only the latest run is resumed; start a new '
                            'run without --resume, or continue an older run with --load-epoch '
                            'N --model-prefix PREFIX' % found[-1])
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


def changed_flags(state, given):
    """`--flag old -> new` for every flag of the checkpoint's run that `given` changes."""
    saved = dict(state['args'])
    for name, value_of in ABSENT_MEANT.items():
        saved.setdefault(name, value_of(state['run']))
    changes = []
    for name in sorted(saved):
        if name in MAY_CHANGE or name not in given:   # a flag newer than the checkpoint
            continue
        new = json.loads(json.dumps(given[name], default=str))
        if new != saved[name]:
            changes.append((name, saved[name], new))
    seed = given.get('rand_seed')
    if seed is not None and seed != state['rand_seed']:
        changes.append(('rand_seed', state['rand_seed'], seed))
    return ['--%s %s -> %s' % (FLAG_NAMES.get(name, name.replace('_', '-')),
                               _show(old), _show(new)) for name, old, new in changes]


def _show(value):
    if isinstance(value, list):
        return ','.join(map(str, value)) or '(none)'
    return str(value)
