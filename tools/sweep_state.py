"""What tools/sweep.py knows about its runs: the grid, each run's files, the plan, the lock.

The sweep drives train_model.py only through its flags, and learns where each run stands
from the files the run writes; read_run() is the one place here that reads them, through
the engine's own layout functions.
"""
import glob
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from common.errors import UserError
from common.atomic import atomic_write
from common.pidlock import Busy, PidLock
from engine.checkpoint import checkpoint_epochs
from common.reading import open_regular
from engine.logs import read_head_args, read_metrics
from engine.runfiles import (config_dir, config_stem, log_name, metrics_path, run_logs,
                             split_run_number, weights_prefix)

PLAN_FILE = 'sweep.json'
LOCK_FILE = 'sweep.lock'
OUTPUT_FOLDER = 'sweep-output'   # the children's stdout/stderr; not .txt: get_results reads those


# ---------------------------------------------------------------- the grid

@dataclass(frozen=True)
class Point:
    """One run of the grid.

    Each seed trains in its own folder <log-dir>/seed<S>/ under one log name per
    configuration: get_results.py groups the runs of one log name in one <dataset>/<network>
    folder, so the seeds of a configuration are reported together (median, mean +/- std),
    while every run keeps files no other run touches and --resume finds exactly its own run.
    """
    network: str
    depth: int
    widen_factor: int
    seed: int

    @property
    def key(self):
        return '%s_d%dw%d_seed%d' % (self.network, self.depth, self.widen_factor, self.seed)

    def log_dir(self, root):
        return os.path.join(root, 'seed%d' % self.seed)

    def output_path(self, root):
        return os.path.join(root, OUTPUT_FOLDER, self.key + '.out')


def grid(networks, depths, widen_factors, seeds):
    """Every combination once, in the order given (a repeated value would make two runs
    share one set of files)."""
    points = [Point(n, d, w, s) for n in networks for d in depths for w in widen_factors
              for s in seeds]
    return list(dict.fromkeys(points))


# ---------------------------------------------------------------- a run's files

@dataclass
class RunState:
    log: Optional[str] = None            # the point's latest log; None: never started
    epochs_done: int = 0                 # epochs in its metrics file
    num_epochs: Optional[int] = None     # --num-epochs, from the log's head
    checkpoint: Optional[int] = None     # the latest complete checkpoint (epochs done)
    current_epoch: Optional[int] = None  # the highest Epoch[N] the log mentions
    epoch_seconds: List[float] = field(default_factory=list)   # time_cost of each epoch

    @property
    def finished(self):
        return self.num_epochs is not None and self.epochs_done >= self.num_epochs

    @property
    def resumable(self):
        return not self.finished and self.checkpoint is not None


def read_run(log_dir, point, exp_name, train_args=None):
    """The state of the latest run of `point` under `log_dir`, from the files it wrote:
    <log_dir>/<dataset>[_noaug]/<net>/<net>_d<D>w<W>_<exp><run>.txt, <log>.metrics.jsonl,
    weights/<log name>/<log name>-<epoch:04d>.params and .state (a checkpoint counts once
    both exist: train_model.py writes the .state last). The runs are those the engine's
    own rule gives (runfiles.run_logs) in the folder of the data set and augmentation that
    `train_args` (the flags after `--`) choose; without them, in every data set folder."""
    stem = config_stem(point.network, point.depth, point.widen_factor, exp_name)
    if train_args is None:
        folders = glob.glob(os.path.join(glob.escape(log_dir), '*', point.network))
    else:
        folders = [run_folder(log_dir, point, train_args)]
    logs = []
    for folder in folders:
        logs.extend((split_run_number(log_name(path), stem), path)
                    for path in run_logs(folder, stem))
    if not logs:
        return RunState()
    log = max(logs)[1]
    state = RunState(log=log)
    num_epochs = read_head_args(log).get('num_epochs')
    state.num_epochs = num_epochs if isinstance(num_epochs, int) else None
    epochs = [int(n) for n in re.findall(r'Epoch\[(\d+)\]', read_text(log, -4096))]
    state.current_epoch = max(epochs) if epochs else None
    # distinct epochs, never lines: a resumed run writes the epochs after its checkpoint
    # again, and an epoch of another length is none of this run's
    records = [r for r in read_metrics_quietly(metrics_path(log))
               if state.num_epochs is None or r.epoch < state.num_epochs]
    state.epoch_seconds = [r.time_cost for r in records if r.time_cost is not None]
    state.epochs_done = len(records)
    saved = checkpoint_epochs(weights_prefix(log))   # the engine's own rule
    state.checkpoint = saved[-1] if saved else None
    return state


def run_folder(log_dir, point, train_args):
    """The folder train_model.py puts the runs of `point` in, given the flags after `--`
    (their --dataset and --aug-type, as train_model.py resolves them)."""
    from data.datasets import DATASETS
    from train_model import build_parser
    args, _ = build_parser().parse_known_args(list(train_args))
    aug_type = DATASETS[args.dataset]['aug_type'] if args.aug_type is None else args.aug_type
    return config_dir(log_dir, args.dataset, aug_type, point.network)


def read_metrics_quietly(path):
    """The epochs of a metrics file (engine.logs.read_metrics); none when it is missing or
    is no regular file."""
    try:
        return read_metrics(path)
    except (OSError, UserError):
        return []


def read_text(path, start=0, size=-1):
    """The text of a file, or `size` bytes from `start` (negative: from the end); '' when
    it is missing or is no regular file (a FIFO would block)."""
    try:
        with open_regular(path) as handle:
            if start < 0:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size + start))
            else:
                handle.seek(start)
            return handle.read(size).decode('utf-8', 'replace')
    except (OSError, UserError):
        return ''


# ---------------------------------------------------------------- the plan file

def plan_path(root):
    return os.path.join(root, PLAN_FILE)


def write_plan(root, plan):
    """The sweep's settings and every run's status, for --status and for a restart."""
    plan = dict(plan, updated=time.strftime('%Y-%m-%d %H:%M:%S'))
    data = (json.dumps(plan, indent=1, sort_keys=True) + '\n').encode('utf-8')

    def write(path):
        with open(path, 'wb') as handle:
            handle.write(data)
    try:
        atomic_write(plan_path(root), write)
    except OSError as err:
        raise UserError('cannot write the sweep plan %s (%s)' % (plan_path(root), err.strerror))


def read_plan(root):
    """The plan a sweep wrote in `root`, or None when there is none."""
    path = plan_path(root)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            plan = json.load(handle)
        plan['runs'] = [dict(run, point=Point(**run['point'])) for run in plan['runs']]
        return plan
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError('cannot read the sweep plan %s (%s); move it away to start afresh'
                        % (path, err))


def plan_run(point, status, state, **extra):
    """One run's entry in the plan."""
    return dict(point=asdict(point), key=point.key, status=status, log=state.log,
                epochs_done=state.epochs_done, num_epochs=state.num_epochs,
                checkpoint=state.checkpoint, current_epoch=state.current_epoch, **extra)


# ---------------------------------------------------------------- the lock

class SweepLock(PidLock):
    """One sweep per log folder: a PidLock on <root>/sweep.lock (a killed sweep's lock is
    stale by construction: the next sweep simply takes it)."""

    def __init__(self, root):
        super().__init__(os.path.join(root, LOCK_FILE))

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            return super().acquire()
        except Busy as busy:
            raise UserError('another sweep (pid %s) is running on %s; wait for it, stop it, '
                            'or pass another --log-dir' % (busy.holder,
                                                           os.path.dirname(self.path)))
        except OSError as err:
            raise UserError('cannot write the sweep lock %s (%s)'
                            % (self.path, err.strerror or err)) from None

    @staticmethod
    def holder(root):
        """The pid of the sweep running on root, or None."""
        return PidLock.holder(os.path.join(root, LOCK_FILE))
