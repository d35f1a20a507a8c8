"""tools/sweep.py on tiny real runs: the grid, the thread split, skipping, failing, resuming."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from data.fashion_mnist import read_idx
from data.synthetic import write_record_dataset
from helpers import assert_one_line_error
from tools.sweeper import state as sweep_state
from tools.sweeper import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, 'tools', 'sweep.py')

FASHION = '/usr/share/datasets/fashion-mnist'
EPOCHS = 2

# A stand-in for the train command: writes down the environment and the flags it was given,
# then becomes train_model.py with them (exec: the same process, the same environment); for
# the network `nosuch` it fails as train_model.py would, without the cost of starting MXNet.
PROBE = '''import json, os, sys
with open(os.environ['SWEEP_PROBE_FILE'], 'a') as out:
    out.write(json.dumps(dict(omp=os.environ.get('OMP_NUM_THREADS'), argv=sys.argv[1:])) + '\\n')
if sys.argv[sys.argv.index('--network') + 1] == 'nosuch':
    sys.exit('error: unknown network nosuch')
os.execv(sys.executable, [sys.executable, %r] + sys.argv[1:])
''' % os.path.join(ROOT, 'train_model.py')


def _slice(prefix, count):
    images, _ = read_idx(os.path.join(FASHION, prefix + '-images-idx3-ubyte.gz'), 3)
    labels, _ = read_idx(os.path.join(FASHION, prefix + '-labels-idx1-ubyte.gz'), 1)
    return images[:count], labels[:count]


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    """256 training and 64 test images of the real Fashion-MNIST: 8 batches an epoch."""
    out = str(tmp_path_factory.mktemp('sweep-data'))
    write_record_dataset(out, 'fashion-mnist', _slice('train', 256), _slice('t10k', 64))
    return out


def train_flags(data_dir):
    return ['--', '--dataset', 'fashion-mnist', '--data-dir', data_dir, '--cpu',
            '--num-epochs', str(EPOCHS), '--checkpoint-epochs', '1', '--batch-size', '32',
            '--test-batch-size', '64', '--log-iters', '4']


def sweep_command(log_dir, probe_dir, *options):
    probe = os.path.join(str(probe_dir), 'probe.py')
    if not os.path.exists(probe):
        with open(probe, 'w') as handle:
            handle.write(PROBE)
    return [sys.executable, SWEEP, '--log-dir', str(log_dir), '--interval', '0.05',
            '--train-command', '%s %s' % (sys.executable, probe)] + list(options)


def run_sweep(log_dir, probe_dir, *options):
    # a value of its own in the sweep's environment: the runs must see the sweep's split instead
    env = dict(os.environ, OMP_NUM_THREADS='7',
               SWEEP_PROBE_FILE=os.path.join(str(probe_dir), 'launches.jsonl'))
    return subprocess.run(sweep_command(log_dir, probe_dir, *options), capture_output=True,
                          text=True, env=env, timeout=300)


def launches(probe_dir):
    path = os.path.join(str(probe_dir), 'launches.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def flag(argv, name):
    return argv[argv.index(name) + 1]


def metrics(log):
    with open(os.path.splitext(log)[0] + '.metrics.jsonl') as handle:
        return [json.loads(line) for line in handle]


# One thread a run: OpenMP threads that outnumber the cores spin and cost the suite time.
GRID = ['--networks', 'resnet,cross,nosuch', '--depths', '14', '--seeds', '1,2',
        '--jobs', '2', '--cores', '2']


@pytest.fixture(scope='module')
def finished_sweep(tiny_data, tmp_path_factory):
    """One sweep over 6 points, 2 of which (network nosuch) fail; run once for the module."""
    log_dir = tmp_path_factory.mktemp('sweep-logs')
    probe_dir = tmp_path_factory.mktemp('sweep-probe')
    proc = run_sweep(log_dir, probe_dir, *GRID, *train_flags(tiny_data))
    return log_dir, probe_dir, proc


@pytest.mark.slow
def test_runs_the_grid_with_the_cores_split_and_reports_seeds_together(finished_sweep):
    log_dir, probe_dir, proc = finished_sweep
    assert proc.returncode == 1, proc.stdout + proc.stderr   # the nosuch runs failed
    seen = launches(probe_dir)
    assert len(seen) == 6
    # --cores 2 --jobs 2: every run sees OMP_NUM_THREADS=1 (the sweep's own environment: 7)
    assert {launch['omp'] for launch in seen} == {'1'}
    points = {(flag(x['argv'], '--network'), flag(x['argv'], '--rand-seed'),
               flag(x['argv'], '--log-dir')) for x in seen}
    assert points == {(net, seed, os.path.join(str(log_dir), 'seed' + seed))
                      for net in ('resnet', 'cross', 'nosuch') for seed in ('1', '2')}
    # get_results.py ran on the folder: each configuration has its two seeds
    with open(os.path.join(str(log_dir), 'results.csv')) as handle:
        rows = {row['config']: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ['cross_d14w1_exp', 'resnet_d14w1_exp']
    assert [rows[name]['runs'] for name in sorted(rows)] == ['2', '2']
    assert os.path.exists(os.path.join(str(log_dir), 'fashion-mnist_curves.png'))
    assert '4 of 6 runs done, 2 failed' in proc.stdout


@pytest.mark.slow
def test_a_failed_run_is_reported_and_the_others_finish(finished_sweep):
    log_dir, _, proc = finished_sweep
    failed = [line for line in proc.stdout.splitlines() if line.startswith('FAILED')]
    assert len(failed) == 2 and all('nosuch_d14w1_seed' in line for line in failed)
    output = os.path.join(str(log_dir), 'sweep-output', 'nosuch_d14w1_seed1.out')
    assert any(('output: ' + output) in line and 'exit 1' in line
               and 'error: unknown network nosuch' in line for line in failed), failed
    assert '2 of 6 runs failed' in proc.stdout
    plan = sweep_state.read_plan(str(log_dir))
    statuses = {run['key']: run['status'] for run in plan['runs']}
    assert statuses == {'%s_d14w1_seed%d' % (net, seed): status
                        for net, status in (('resnet', 'done'), ('cross', 'done'),
                                            ('nosuch', 'failed')) for seed in (1, 2)}


@pytest.mark.slow
def test_status_prints_progress_without_running_anything(finished_sweep):
    log_dir, probe_dir, _ = finished_sweep
    before = len(launches(probe_dir))
    proc = subprocess.run([sys.executable, SWEEP, '--status', '--log-dir', str(log_dir)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'not running' in proc.stdout and '4 of 6 runs done, 2 failed' in proc.stdout
    line = next(line for line in proc.stdout.splitlines() if 'cross_d14w1_seed2' in line)
    assert 'done' in line and '%d/%d epochs' % (EPOCHS, EPOCHS) in line
    assert len(launches(probe_dir)) == before


@pytest.mark.slow
def test_restart_skips_finished_runs_and_retries_failed_ones(finished_sweep, tiny_data):
    log_dir, probe_dir, _ = finished_sweep
    dry = run_sweep(log_dir, probe_dir, '--dry-run', *GRID, *train_flags(tiny_data))
    assert dry.returncode == 0, dry.stderr
    assert 'cross_d14w1_seed1: finished (%d of %d epochs)' % (EPOCHS, EPOCHS) in dry.stdout
    before = len(launches(probe_dir))
    proc = run_sweep(log_dir, probe_dir, *GRID, *train_flags(tiny_data))
    assert proc.returncode == 1
    again = launches(probe_dir)[before:]
    assert sorted(flag(x['argv'], '--network') for x in again) == ['nosuch', 'nosuch']
    assert sum(line.startswith('skip ') for line in proc.stdout.splitlines()) == 4


@pytest.mark.slow
def test_a_stopped_sweep_resumes_to_the_uninterrupted_result(finished_sweep, tiny_data,
                                                             tmp_path):
    reference_dir = finished_sweep[0]
    log_dir = tmp_path / 'logs'
    # one thread, as the reference run had: bitwise resume needs the same thread count
    options = ['--networks', 'cross', '--depths', '14', '--seeds', '1', '--jobs', '1',
               '--cores', '1'] + train_flags(tiny_data)
    env = dict(os.environ, OMP_NUM_THREADS='7', SWEEP_PROBE_FILE=str(tmp_path / 'launches.jsonl'))
    proc = subprocess.Popen(sweep_command(log_dir, tmp_path, *options), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    weights = log_dir / 'seed1' / 'fashion-mnist' / 'cross' / 'weights' / 'cross_d14w1_exp1'
    first = weights / 'cross_d14w1_exp1-0001.state'
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signal.SIGTERM, output
    child = launches(tmp_path)[0]
    state = sweep_state.read_run(str(log_dir / 'seed1'), sweep_state.Point('cross', 14, 1, 1),
                                 'exp')
    assert state.checkpoint >= 1 and state.epochs_done < EPOCHS, output   # stopped mid-run
    plan = sweep_state.read_plan(str(log_dir))
    assert plan['state'] == 'stopped' and plan['runs'][0]['status'] == 'stopped'
    with pytest.raises(ProcessLookupError):   # the run went with the sweep
        os.kill(plan['runs'][0]['pid'], 0)
    assert child['omp'] == '1'

    again = run_sweep(log_dir, tmp_path, *options)
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'resume from its checkpoint after epoch %d' % state.checkpoint in again.stdout
    assert '--resume' in launches(tmp_path)[-1]['argv']
    resumed = metrics(state.log)   # the same log, continued
    reference = metrics(str(reference_dir / 'seed1' / 'fashion-mnist' / 'cross' /
                            'cross_d14w1_exp1.txt'))
    assert [m['epoch'] for m in resumed] == list(range(EPOCHS))
    for key in ('train_loss', 'train_acc', 'val_loss', 'val_acc'):
        assert resumed[-1][key] == reference[-1][key], key


@pytest.mark.slow
def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path, tiny_data):
    log_dir = tmp_path / 'nothing-yet'
    proc = subprocess.run([sys.executable, SWEEP, '--dry-run', '--log-dir', str(log_dir),
                           '--networks', 'resnet,cross', '--depths', '14,20', '--seeds', '1,2',
                           '--jobs', '3', '--cores', '7', '--', '--dataset', 'fashion-mnist',
                           '--data-dir', tiny_data, '--num-epochs', '2'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    commands = [line.split() for line in proc.stdout.splitlines()
                if line.startswith('  OMP_NUM_THREADS=')]
    assert len(commands) == 8 and {c[0] for c in commands} == {'OMP_NUM_THREADS=2'}
    assert all(c[-2:] == ['--num-epochs', '2'] and '--resume' not in c for c in commands)
    assert {(flag(c, '--network'), flag(c, '--depth'), flag(c, '--rand-seed'))
            for c in commands} == {(n, d, s) for n in ('resnet', 'cross')
                                   for d in ('14', '20') for s in ('1', '2')}
    assert not log_dir.exists()


def test_thread_split_is_at_least_one_thread():
    assert sweep.parse_args(['--jobs', '4', '--cores', '3']).threads == 1
    assert sweep.parse_args(['--jobs', '2', '--cores', '5']).threads == 2


def test_a_repeated_value_gives_one_run():
    args = sweep.parse_args(['--networks', 'cross,resnet,cross', '--seeds', '2,1,2'])
    assert [p.key for p in args.points] == ['cross_d26w1_seed2', 'cross_d26w1_seed1',
                                            'resnet_d26w1_seed2', 'resnet_d26w1_seed1']


@pytest.mark.slow
def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path, tiny_data):
    held = sweep_state.SweepLock(str(tmp_path)).acquire()
    try:
        proc = subprocess.run([sys.executable, SWEEP, '--log-dir', str(tmp_path), '--seeds',
                               '1', '--', '--dataset', 'fashion-mnist', '--data-dir',
                               tiny_data, '--num-epochs', '1'],
                              capture_output=True, text=True, timeout=60)
        assert_one_line_error(proc, 'another sweep (pid %d)' % os.getpid(), str(tmp_path))
        assert sweep_state.SweepLock.holder(str(tmp_path)) == str(os.getpid())
    finally:
        held.release()
    # the lock file stays, with a pid nobody holds: stale, so the next sweep takes it
    assert sweep_state.SweepLock.holder(str(tmp_path)) is None
    sweep_state.SweepLock(str(tmp_path)).acquire().release()


@pytest.mark.slow
@pytest.mark.parametrize('argv, words', [
    (['--', '--exp-name', 'x'], ['--exp-name', 'sets']),
    (['--', '--resume'], ['--resume']),
    (['--jobs', '0'], ['--jobs']),
    (['--seeds', 'a,b'], ['--seeds']),
    (['--seeds', '1,-1'], ['--seeds', '-1']),
    (['--networks', 'cross,../x'], ['../x']),
    (['--status'], ['no sweep']),
])
def test_bad_input_gets_one_line(argv, words, tmp_path):
    proc = subprocess.run([sys.executable, SWEEP, '--log-dir', str(tmp_path / 'x')] + argv,
                          capture_output=True, text=True, timeout=60)
    assert_one_line_error(proc, *words)


# A grid that would fail run by run is refused before any run starts: one line naming the
# first run train_model.py would refuse, and no sweep folder (the default train command).
@pytest.mark.slow
@pytest.mark.parametrize('grid, train, words', [
    (['--networks', 'cross,nosuch'], [], ['nosuch_d14w1_seed1', 'unknown network', 'resnet']),
    (['--networks', 'Cross'], [], ['Cross_d14w1_seed1', "as 'cross'"]),
    (['--depths', '14,7'], [], ['cross_d7w1_seed1', 'invalid depth 7', '14 above']),
    (['--widen-factors', '1000'], [], ['cross_d14w1000_seed1', 'GB']),
    ([], ['--lr', '-1'], ['cross_d14w1_seed1', '--lr must be positive']),
    ([], ['--lr-steps', '3,2'], ['cross_d14w1_seed1', '--lr-steps']),
    ([], ['--data-dir', '{missing}'], ['cross_d14w1_seed1', 'no-data not found',
                                        'data.prepare']),
])
def test_a_grid_train_model_would_refuse_is_refused_before_any_run(grid, train, words,
                                                                    tmp_path, tiny_data):
    assert_refused_before_any_run(tmp_path, tiny_data, grid, train, words)


@pytest.mark.slow
def test_a_dry_run_checks_the_runs_too(tmp_path, tiny_data):
    assert_refused_before_any_run(tmp_path, tiny_data, ['--dry-run', '--depths', '14,7'], [],
                                  ['cross_d7w1_seed1', 'invalid depth 7'])


def assert_refused_before_any_run(tmp_path, tiny_data, grid, train, words):
    log_dir = tmp_path / 'sweep'
    train = [flag.format(missing=tmp_path / 'no-data') for flag in train]
    proc = subprocess.run(
        [sys.executable, SWEEP, '--log-dir', str(log_dir), '--networks', 'cross',
         '--depths', '14', '--seeds', '1'] + grid
        + ['--', '--dataset', 'fashion-mnist', '--data-dir', tiny_data, '--cpu'] + train,
        capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, *words)
    assert not log_dir.exists() and proc.stdout == ''


@pytest.mark.slow
def test_a_restart_with_other_training_flags_is_refused(finished_sweep, tiny_data):
    log_dir, probe_dir, _ = finished_sweep
    before = len(launches(probe_dir))
    proc = run_sweep(log_dir, probe_dir, *GRID, *train_flags(tiny_data), '--lr', '0.5')
    assert_one_line_error(proc, 'other training flags', '--lr 0.5')
    assert len(launches(probe_dir)) == before


@pytest.mark.slow
def test_runs_left_training_by_a_killed_sweep_are_not_doubled(tmp_path, tiny_data):
    """A sweep killed with SIGKILL cannot stop its runs; the next one must not start them
    a second time beside the first."""
    train_args = ['--dataset', 'fashion-mnist', '--data-dir', tiny_data]
    left = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)',
                             str(tmp_path / 'seed1')])
    try:
        point = sweep_state.Point('cross', 14, 1, 1)
        sweep_state.write_plan(str(tmp_path), dict(
            train_args=train_args, exp_name='exp', threads=1, jobs=1,
            runs=[sweep_state.plan_run(point, 'running', sweep_state.RunState(),
                                       pid=left.pid)]))
        proc = subprocess.run([sys.executable, SWEEP, '--log-dir', str(tmp_path), '--seeds',
                               '1', '--networks', 'cross', '--depths', '14', '--']
                              + train_args, capture_output=True, text=True, timeout=60)
        assert_one_line_error(proc, 'still training', str(left.pid))
    finally:
        left.kill()
        left.wait()
