"""Run a grid of train_model.py runs, a few at a time, resumably; then get_results.py.

    python tools/sweep.py --networks resnet,cross,half,plain --depths 26 --seeds 1,2,3 \\
        --jobs 2 --log-dir snapshot/study -- --dataset fashion-mnist --num-epochs 10 --cpu
    python tools/sweep.py --status --log-dir snapshot/study

Every grid point (network x depth x widen factor x seed) is one train_model.py run with
--rand-seed <seed> and --log-dir <log-dir>/seed<seed>; the flags after `--` go to every run.
Before anything starts, every run is checked as train_model.py checks it (tools/
sweeper/check.py): a grid with a run it would refuse is refused whole, with one line.
--jobs runs train side by side, each with OMP_NUM_THREADS = cores // jobs. A run whose
metrics hold all its epochs is skipped; an interrupted one continues with --resume from its
latest checkpoint (one without a checkpoint starts again). Ctrl-C or a kill stops the runs,
losing at most the epochs since each one's last checkpoint: run the same command again.
A failed run does not stop the others. At the end get_results.py reports on <log-dir>.

Files in <log-dir>: sweep.json (the plan and every run's status; --status prints it),
sweep.lock (one sweep per folder), sweep-output/<run>.out (each run's terminal output).

exit status: 0 every run finished, 1 a run failed (or get_results.py did), 2 bad input,
128 + the signal when stopped (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""
import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

from common.atomic import open_append
from common.errors import ArgumentParser, UserError
from engine.flags import check_exp_name
from tools.sweeper import state as sweep_state
from tools.sweeper.state import Point, SweepLock, read_run

# Flags the sweep sets for each run itself; given after `--` they would break its bookkeeping.
RESERVED_FLAGS = ('--network', '--depth', '--widen-factor', '--rand-seed', '--exp-name',
                  '--log-dir', '--resume', '--load-epoch', '--model-prefix')
STOP_GRACE_SECONDS = 10
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY = os.path.join(ROOT, 'tools', 'sweep.py')   # also the checker's process: --check-runs


# ---------------------------------------------------------------- flags

def int_list(text):
    try:
        values = [int(x) for x in text.split(',') if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a comma-separated list of integers' % text)
    if not values:
        raise argparse.ArgumentTypeError('an empty list')
    return values


def name_list(text):
    values = [x.strip() for x in text.split(',') if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError('an empty list')
    return values


def build_parser():
    parser = ArgumentParser(
        usage='%(prog)s [options] -- [train_model.py flags]',
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--networks', type=name_list, default=['cross'],
                        help='comma-separated networks; default cross')
    parser.add_argument('--depths', type=int_list, default=[26], help='default 26')
    parser.add_argument('--widen-factors', '--widen', type=int_list, default=[1],
                        help='default 1')
    parser.add_argument('--seeds', type=int_list, default=[1, 2, 3], help='default 1,2,3')
    parser.add_argument('--exp-name', default='exp',
                        help='the log-name part before the run number; default exp')
    parser.add_argument('--log-dir', default='./snapshot/',
                        help='the sweep folder (runs under seed<S>/); default ./snapshot/')
    parser.add_argument('--jobs', '-j', type=int, default=1, help='runs at a time; default 1')
    parser.add_argument('--cores', type=int, default=None,
                        help='cores to split between the runs; default: those this '
                             'process may use (%d)' % usable_cores())
    parser.add_argument('--interval', type=float, default=2.0,
                        help='seconds between looks at the runs; default 2')
    parser.add_argument('--train-command', default=None,
                        help='the command that trains one run (tests; its flags are not '
                             'checked before the runs start); default: this Python on '
                             'train_model.py')
    parser.add_argument('--dry-run', action='store_true',
                        help='print what each run would do and its command; run nothing')
    parser.add_argument('--status', action='store_true',
                        help='print the progress of the sweep in --log-dir; run nothing')
    parser.add_argument('--check-runs', action='store_true', help=argparse.SUPPRESS)
    return parser


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_args(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index('--') if '--' in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    args.train_args = argv[split + 1:]
    for name in ('jobs', 'cores'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError('--%s must be at least 1 (got %d)' % (name, getattr(args, name)))
    if not args.interval > 0:
        raise UserError('--interval must be positive (got %g)' % args.interval)
    for name, lowest in (('depths', 1), ('widen_factors', 1), ('seeds', 0)):
        if min(getattr(args, name)) < lowest:
            raise UserError('--%s must be at least %d each (got %s)' % (
                name.replace('_', '-'), lowest, ','.join(map(str, getattr(args, name)))))
    bad = [net for net in args.networks if not re.fullmatch(r'[A-Za-z0-9_]+', net)]
    if bad:
        raise UserError('--networks: %r is not a canonical network name (letters, digits, '
                        '_; e.g. cross for dfn-mr: the sweep finds each run\'s files by it)'
                        % bad[0])
    check_exp_name(args.exp_name)   # as train_model.py would, before any run starts
    for token in args.train_args:
        name = token.split('=', 1)[0]
        clash = [flag for flag in RESERVED_FLAGS if len(name) > 3 and flag.startswith(name)]
        if clash:
            raise UserError('%s after `--`: the sweep sets %s for each run itself (use '
                            '--networks, --depths, --widen-factors, --seeds, --exp-name, '
                            '--log-dir before `--`)' % (token, clash[0]))
    args.cores = args.cores or usable_cores()
    args.threads = max(1, args.cores // args.jobs)
    args.command = (shlex.split(args.train_command) if args.train_command
                    else [sys.executable, os.path.join(ROOT, 'train_model.py')])
    args.points = sweep_state.grid(args.networks, args.depths, args.widen_factors, args.seeds)
    return args


def run_flags(args, point, resume=False):
    """The train_model.py flags of one grid point."""
    return ['--network', point.network, '--depth', str(point.depth),
            '--widen-factor', str(point.widen_factor), '--rand-seed', str(point.seed),
            '--exp-name', args.exp_name, '--log-dir', point.log_dir(args.log_dir)] + (
        ['--resume'] if resume else []) + args.train_args


def run_command(args, point, state):
    """The command of one grid point: --resume when it has a checkpoint."""
    return args.command + run_flags(args, point, state.resumable)


def check_runs(args):
    """Refuse a grid with a run that train_model.py would refuse (an unknown network, a
    depth the network cannot have, a bad flag after `--`, missing or damaged records),
    before anything starts or is written. Only for the default train command: another
    command's flags are its own."""
    if args.train_command:
        return
    runs = [[point.key, run_flags(args, point)] for point in args.points]
    proc = subprocess.run([sys.executable, ENTRY, '--check-runs'],
                          input=json.dumps(runs), capture_output=True, text=True)
    if proc.returncode:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else 'exit status %d' % proc.returncode
        if proc.returncode == 2 and why.startswith('error: '):
            raise UserError(why[len('error: '):])
        raise UserError('cannot check the runs with tools/sweeper/check.py: %s' % why)


def describe(state):
    if state.finished:
        return 'finished (%d of %d epochs)' % (state.epochs_done, state.num_epochs)
    if state.resumable:
        return 'resume from its checkpoint after epoch %d' % state.checkpoint
    if state.log:
        return 'new run (%s has no checkpoint)' % state.log
    return 'new run'


def dry_run(args):
    print('%d runs, %d at a time, OMP_NUM_THREADS=%d each' % (
        len(args.points), args.jobs, args.threads))
    for point in args.points:
        state = read_run(point.log_dir(args.log_dir), point, args.exp_name, args.train_args)
        print('%s: %s' % (point.key, describe(state)))
        if not state.finished:
            print('  OMP_NUM_THREADS=%d %s' % (
                args.threads, ' '.join(shlex.quote(x) for x in run_command(args, point, state))))
    return 0


# ---------------------------------------------------------------- progress

def fmt_duration(seconds):
    minutes = int(round(seconds / 60.0))
    if minutes < 1:
        return 'under a minute'
    return 'about ' + ('%d h %02d min' % divmod(minutes, 60) if minutes >= 60
                       else '%d min' % minutes)


def time_left(runs, jobs, seconds_per_epoch):
    """Epochs still to train times the seconds an epoch takes, shared over the jobs."""
    known = [run['num_epochs'] for run in runs if run['num_epochs']]
    if not known or not seconds_per_epoch:
        return None
    left = [max(0, (run['num_epochs'] or known[0]) - run['epochs_done']) for run in runs
            if run['status'] not in ('done', 'failed')]
    slots = min(jobs, len(left)) or 1
    return sum(left) * seconds_per_epoch / slots


def progress_line(runs, jobs, seconds_per_epoch):
    done = sum(run['status'] == 'done' for run in runs)
    failed = sum(run['status'] == 'failed' for run in runs)
    running = ['%s epoch %s/%s' % (run['key'], _current(run), run['num_epochs'] or '?')
               for run in runs if run['status'] == 'running']
    line = '%d of %d runs done' % (done, len(runs))
    if failed:
        line += ', %d failed' % failed
    if running:
        line += '; running: ' + ', '.join(running)
    left = time_left(runs, jobs, seconds_per_epoch)
    if left is not None and done + failed < len(runs):
        line += '; %s left' % fmt_duration(left)
    return line


def _current(run):
    """The epoch being trained, 1-based: the latest the log names, or the one after those
    done when the log has not named it yet."""
    current = max(run['epochs_done'], run['current_epoch'] or 0) + 1
    return min(current, run['num_epochs']) if run['num_epochs'] else current


def print_status(args):
    """--status: the plan, refreshed from the runs' files; starts nothing."""
    plan = sweep_state.read_plan(args.log_dir)
    if plan is None:
        raise UserError('no sweep in %s (no %s); start one with tools/sweep.py --log-dir %s'
                        % (args.log_dir, sweep_state.PLAN_FILE, args.log_dir))
    holder = SweepLock.holder(args.log_dir)
    runs = []
    for run in plan['runs']:
        point = run['point']
        state = read_run(point.log_dir(args.log_dir), point, plan['exp_name'],
                         plan['train_args'])
        status = run['status']
        if not holder and status == 'running':   # the sweep died without saying so
            status = 'stopped'
        runs.append(sweep_state.plan_run(point, status, state))
    print('sweep in %s: %s (last update %s)' % (
        args.log_dir, 'running, pid %s' % holder if holder else 'not running',
        plan.get('updated', 'unknown')))
    print(progress_line(runs, plan.get('jobs', 1), plan.get('seconds_per_epoch')))
    for run in runs:
        print('  %-28s %-8s %s/%s epochs  %s' % (run['key'], run['status'], run['epochs_done'],
                                               run['num_epochs'] or '?', run['log'] or '-'))
    return 0


# ---------------------------------------------------------------- the sweep

class Stop(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: stop the runs, keep their checkpoints."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class Sweep:
    """Starts the runs K at a time, watches their files, stops them on a signal."""

    def __init__(self, args):
        self.args = args
        self.children = {}       # point -> (Popen, output file)
        self.runs = {}           # point -> its plan entry
        self.failures = []
        self.epoch_times = []    # wall seconds of the epochs seen ending in this sweep
        self.last_seen = {}      # point -> (epochs done, when)
        self.stop_signal = None

    def plan(self, state='running'):
        args = self.args
        return dict(version=1, state=state, pid=os.getpid(), exp_name=args.exp_name,
                    train_args=args.train_args, command=args.command, jobs=args.jobs,
                    cores=args.cores, threads=args.threads,
                    seconds_per_epoch=self.seconds_per_epoch(),
                    runs=[self.runs[point] for point in args.points])

    def seconds_per_epoch(self):
        if self.epoch_times:
            return sum(self.epoch_times) / len(self.epoch_times)
        earlier = [s for run in self.runs.values() for s in run.get('epoch_seconds', [])]
        return sum(earlier) / len(earlier) if earlier else None

    def refresh(self, point, status, **extra):
        state = read_run(point.log_dir(self.args.log_dir), point, self.args.exp_name,
                         self.args.train_args)
        kept = {key: value for key, value in self.runs.get(point, {}).items()
                if key in ('pid', 'output', 'returncode')}
        kept.update(extra, epoch_seconds=state.epoch_seconds)
        self.runs[point] = sweep_state.plan_run(point, status, state, **kept)
        return state

    def start(self, point):
        state = self.refresh(point, 'running')
        command = run_command(self.args, point, state)
        output_path = point.output_path(self.args.log_dir)
        env = dict(os.environ, OMP_NUM_THREADS=str(self.args.threads))
        try:
            os.makedirs(os.path.dirname(output_path), exist_ok=True)
            output = open_append(output_path)
            output.write('=== %s OMP_NUM_THREADS=%d %s\n' % (
                time.strftime('%Y-%m-%d %H:%M:%S'), self.args.threads, shlex.join(command)))
            output.flush()
            # Its own process group: a stop reaches the run and whatever it started, and a
            # Ctrl-C on the terminal reaches only the sweep, which stops the runs in order.
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as err:
            raise UserError('cannot start %s (%s: %s)' % (point.key, err.filename or command[0],
                                                          err.strerror))
        self.children[point] = (child, output)
        self.runs[point].update(pid=child.pid, output=output_path, returncode=None)
        self.last_seen[point] = (state.epochs_done, time.time())
        print('start %s: %s' % (point.key, describe(state)), flush=True)

    def finish(self, point, returncode):
        self.children.pop(point)[1].close()
        state = self.refresh(point, 'running', returncode=returncode)
        self.note_epochs(point, state)
        if returncode == 0 and state.finished:
            self.runs[point]['status'] = 'done'
            print('done %s: %s' % (point.key, state.log), flush=True)
            return
        self.runs[point]['status'] = 'failed'
        self.failures.append(point)
        if returncode < 0:
            why = 'killed by signal %d' % -returncode
        elif returncode:
            why = 'exit %d' % returncode
        else:
            why = 'exit 0 but its log has %d of %s epochs' % (state.epochs_done,
                                                               state.num_epochs or '?')
        output_path = point.output_path(self.args.log_dir)
        print('FAILED %s (%s): %s; log: %s; output: %s' % (
            point.key, why, last_line(output_path), state.log or 'none', output_path),
            flush=True)

    def note_epochs(self, point, state):
        """Time the epochs that ended since the last look (wall time, start-up included)."""
        seen, when = self.last_seen.get(point, (state.epochs_done, time.time()))
        if state.epochs_done > seen:
            now = time.time()
            self.epoch_times += [(now - when) / (state.epochs_done - seen)] * (
                state.epochs_done - seen)
            self.last_seen[point] = (state.epochs_done, now)

    def watch(self):
        """Look at every running run once: its files, and whether it ended."""
        for point, (child, _) in list(self.children.items()):
            returncode = child.poll()
            if returncode is not None:
                self.finish(point, returncode)
            else:
                self.note_epochs(point, self.refresh(point, 'running'))

    def stop(self, signum, frame=None):
        self.stop_signal = signum

    def stop_children(self):
        """SIGTERM to each run's process group, SIGKILL after a grace period."""
        for child, _ in self.children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.time() + STOP_GRACE_SECONDS
        for point, (child, _) in list(self.children.items()):
            try:
                child.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
            _signal_group(child, signal.SIGKILL)   # anything the run left behind
            self.children.pop(point)[1].close()
            self.refresh(point, 'stopped')

    def run(self):
        args = self.args
        pending = []
        for point in args.points:
            state = self.refresh(point, 'pending')
            if state.finished:
                self.runs[point]['status'] = 'done'
                print('skip %s: %s' % (point.key, describe(state)))
            else:
                pending.append(point)
        print('%d runs, %d to train, %d at a time, OMP_NUM_THREADS=%d each' % (
            len(args.points), len(pending), args.jobs, args.threads), flush=True)
        last_line_printed = None
        while pending or self.children:
            if self.stop_signal is not None:
                raise Stop(self.stop_signal)
            while pending and len(self.children) < args.jobs:
                self.start(pending.pop(0))
            self.watch()
            line = progress_line([self.runs[p] for p in args.points], args.jobs,
                                 self.seconds_per_epoch())
            if line != last_line_printed:
                sweep_state.write_plan(args.log_dir, self.plan())
                print(line, flush=True)
                last_line_printed = line
            if self.children:
                time.sleep(args.interval)
        sweep_state.write_plan(args.log_dir, self.plan('finished'))


def _signal_group(child, signum):
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def last_line(path):
    lines = [line.strip() for line in sweep_state.read_text(path, -4096).splitlines()
             if line.strip()]
    return lines[-1] if lines else '(no output)'


def check_restart(args):
    """A restart must train with the flags the runs began with; runs it left must be gone."""
    plan = sweep_state.read_plan(args.log_dir)
    if plan is None:
        return
    if (plan['train_args'], plan['exp_name']) != (args.train_args, args.exp_name):
        raise UserError('%s holds a sweep with other training flags (%s; now %s): give the '
                        'same flags after `--` and the same --exp-name, or another --log-dir'
                        % (args.log_dir, shlex.join(plan['train_args']) or 'none',
                           shlex.join(args.train_args) or 'none'))
    alive = [str(run['pid']) for run in plan['runs']
             if run['status'] == 'running' and run.get('pid') and _is_run_of(run['pid'], args)]
    if alive:
        raise UserError('runs of an earlier sweep in %s are still training (pids %s); stop '
                        'them or wait for them, then start the sweep again'
                        % (args.log_dir, ', '.join(alive)))
    if plan.get('threads') != args.threads:
        print('note: OMP_NUM_THREADS is now %d (was %s): resumed runs continue correctly but '
              'not bitwise as an uninterrupted run would' % (args.threads, plan.get('threads')))


def _is_run_of(pid, args):
    """True when pid is alive and is a training run in this sweep's folder."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            command = handle.read().split(b'\0')
    except OSError:
        return False
    log_dir = os.path.abspath(args.log_dir).encode()
    return any(os.path.abspath(part).startswith(log_dir) for part in command if part)


def sweep(args):
    lock = SweepLock(args.log_dir).acquire()
    runner = Sweep(args)
    # SIGHUP too: a closed terminal would otherwise leave the runs training unwatched
    previous = {signum: signal.signal(signum, runner.stop)
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        check_restart(args)
        runner.run()
    except Stop as stop:
        print('stopping %d run%s ...' % (len(runner.children),
                                         '' if len(runner.children) == 1 else 's'), flush=True)
        runner.stop_children()
        sweep_state.write_plan(args.log_dir, runner.plan('stopped'))
        print('stopped; the same command continues each run from its last checkpoint',
              flush=True)
        return 128 + stop.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if runner.children:   # an unexpected error: leave no run training unwatched
            runner.stop_children()
        lock.release()
    results = subprocess.run([sys.executable, os.path.join(ROOT, 'get_results.py'),
                              args.log_dir], cwd=os.getcwd())
    if runner.failures:
        print('%d of %d runs failed: %s' % (len(runner.failures), len(args.points),
                                            ', '.join(p.key for p in runner.failures)))
        return 1
    return 1 if results.returncode else 0


def main(argv=None):
    args = parse_args(argv)
    if args.check_runs:   # the child process of check_runs: MXNet loads there, never here
        from tools.sweeper import check
        return check.main()
    if args.status:
        return print_status(args)
    check_runs(args)
    if args.dry_run:
        return dry_run(args)
    return sweep(args)

