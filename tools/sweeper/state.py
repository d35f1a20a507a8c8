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


PLAN_MAX_BYTES = 16 << 20   # a plan of 10,000 runs is about 5 MB


def read_plan(root):
    """The checked plan a sweep wrote in `root`, or None when there is none. An edited
    or damaged plan is one line naming its first wrong field (plan_problem)."""
    path = plan_path(root)
    if not os.path.lexists(path):
        return None
    try:
        with open_regular(path, max_bytes=PLAN_MAX_BYTES, what='the sweep plan') as handle:
            plan = json.loads(handle.read().decode('utf-8'))
    except (OSError, ValueError) as err:
        raise UserError('cannot read the sweep plan %s (%s); move it away to start afresh'
                        % (path, getattr(err, 'strerror', None) or err)) from None
    problem = plan_problem(plan)
    if problem:
        raise UserError('the sweep plan %s is damaged: %s; move it away to start afresh'
                        % (path, problem))
    plan['runs'] = [dict(run, point=Point(**run['point'])) for run in plan['runs']]
    return plan


def _whole(low=0, none=False):
    return lambda v: (none and v is None) or (isinstance(v, int) and not isinstance(v, bool)
                                               and v >= low)


def _text(v):
    return isinstance(v, str)


# field -> check, for the plan and for each of its runs: what --status and a restart read
PLAN_FIELDS = {
    'exp_name': _text,
    'train_args': lambda v: isinstance(v, list) and all(map(_text, v)),
    'runs': lambda v: isinstance(v, list) and all(isinstance(run, dict) for run in v),
}
OPTIONAL_PLAN_FIELDS = {
    'updated': _text, 'jobs': _whole(1), 'threads': _whole(1, none=True),
    'seconds_per_epoch': lambda v: v is None or (isinstance(v, (int, float))
                                                 and not isinstance(v, bool) and v >= 0),
}
RUN_FIELDS = {
    'key': _text, 'status': _text, 'epochs_done': _whole(),
    'num_epochs': _whole(1, none=True), 'current_epoch': _whole(none=True),
    'checkpoint': _whole(1, none=True), 'log': lambda v: v is None or _text(v),
    'point': lambda v: isinstance(v, dict) and set(v) == {'network', 'depth', 'widen_factor',
                                                          'seed'}
    and _text(v['network']) and all(_whole()(v[k]) for k in ('depth', 'widen_factor', 'seed')),
}
OPTIONAL_RUN_FIELDS = {'pid': _whole(1, none=True)}


def plan_problem(plan):
    """The first field of a plan that is missing or not what a sweep writes, or None."""
    if not isinstance(plan, dict):
        return 'not a JSON object'
    problem = _first_wrong(plan, PLAN_FIELDS, OPTIONAL_PLAN_FIELDS)
    if problem:
        return problem
    for number, run in enumerate(plan['runs'], 1):
        problem = _first_wrong(run, RUN_FIELDS, OPTIONAL_RUN_FIELDS)
        if problem:
            return 'run %d: %s' % (number, problem)
    return None


def _first_wrong(entry, required, optional):
    for name, check in list(required.items()) + list(optional.items()):
        if name not in entry:
            if name in optional:
                continue
            return 'field %r is missing' % name
        if not check(entry[name]):
            return 'field %r is wrong (%.60r)' % (name, entry[name])
    return None


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
