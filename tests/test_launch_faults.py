"""tools/launch.py under faults, on 127.0.0.1: a failed process ends the whole job with one
line, nothing of the job is left running, a killed run resumes, local jobs stay on loopback.

Most tests launch a tiny stand-in for train_model.py (it joins the kvstore and does what the
test needs); the kill-and-resume test trains for real on the Fashion-MNIST slice. Every job
carries a marker in its environment, so the tests find each process it started, however
deep, and check that none outlives the launcher.
"""
import os
import re
import signal
import subprocess
import sys
import textwrap
import uuid

import psutil
import pytest

import get_results
from engine import logs
from helpers import assert_one_line_error
from test_training import ROOT, fashion_slice  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow   # every test here trains or starts a process

MARK = 'FUSENET_LAUNCH_TEST'
LAUNCH = [sys.executable, os.path.join(ROOT, 'tools', 'launch.py')]
# Stands in for train_model.py: joins the kvstore, logs with the workers' Node[k] prefix.
STAND_IN = textwrap.dedent('''
    import os, sys, time
    import mxnet as mx
    kv = mx.kv.create('dist_sync')
    print('Node[%d] joined' % kv.rank, flush=True)
    action = sys.argv[1]
    if action == 'wait-for-file':   # until the test lets it go
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.1)
    elif action == 'silent':        # a worker that hangs without a word
        time.sleep(600)
    elif action == 'rank1-fails' and kv.rank == 1:
        sys.exit(3)
    print('Node[%d] done' % kv.rank, flush=True)
''')


def job_env(**extra):
    """The caller's environment with a fresh marker; dist runs keep the threaded engine."""
    env = {k: v for k, v in os.environ.items() if k != 'MXNET_ENGINE_TYPE'}
    env[MARK] = uuid.uuid4().hex
    env.update(extra)
    return env


def processes_of(env):
    """Every live process that carries this job's marker."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARK) == env[MARK] and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def start(argv, env, stderr=subprocess.PIPE):
    return subprocess.Popen(LAUNCH + argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=stderr, text=True, start_new_session=True)


def finish(proc, env, timeout=120):
    """Wait for the launcher (killing the job should it hang), then no process may remain."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        for left in processes_of(env):
            left.kill()
    proc.stdout_text, proc.stderr_text = out, err
    assert processes_of(env) == []
    return out, err


def wait_for_line(stream, pattern, seen):
    """Read `stream` until a line matches; keep what was read in `seen`."""
    for line in iter(stream.readline, ''):
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError('no line matched %r:\n%s' % (pattern, ''.join(seen[-30:])))


@pytest.fixture
def stand_in(tmp_path):
    path = tmp_path / 'stand_in.py'
    path.write_text(STAND_IN)
    return [sys.executable, str(path)]


@pytest.mark.parametrize('argv, words', [
    (['-n', '0', 'python', 'x.py'], ['--num-workers', 'at least 1']),
    (['-n', '2'], ['no command']),
    (['-n', '2', '-s', '0', 'python', 'x.py'], ['--num-servers']),
    (['-n', '2', '--launcher', 'ssh', 'python', 'x.py'], ['--hostfile']),
    (['-n', '2', '--host-ip', '10.0.0.1', 'python', 'x.py'], ['127.0.0.1']),
    (['-n', '2', '-H', '/nonexistent/hosts', 'python', 'x.py'], ['/nonexistent/hosts']),
])
def test_bad_launcher_flags_are_one_line_errors(argv, words):
    proc = subprocess.run(LAUNCH + argv, cwd=ROOT, capture_output=True, text=True)
    assert_one_line_error(proc, *words)


def test_local_job_listens_on_loopback_only(stand_in, tmp_path):
    env = job_env()
    release = tmp_path / 'release'
    proc = start(['-n', '2', '-s', '1'] + stand_in + ['wait-for-file', str(release)], env)
    seen = []
    wait_for_line(proc.stdout, r'Node\[\d\] joined', seen)
    wait_for_line(proc.stdout, r'Node\[\d\] joined', seen)
    listening = [conn.laddr for p in processes_of(env) for conn in p.net_connections('inet')
                 if conn.status == psutil.CONN_LISTEN]
    release.write_text('')
    finish(proc, env)
    assert proc.returncode == 0, proc.stderr_text
    # scheduler, server and both workers each listen, on 127.0.0.1 and nowhere else
    assert len(listening) >= 4 and {addr.ip for addr in listening} == {'127.0.0.1'}, listening


def test_a_failing_worker_ends_the_job_with_one_line(stand_in):
    env = job_env()
    proc = start(['-n', '2', '-s', '1'] + stand_in + ['rank1-fails'], env)
    _, err = finish(proc, env)
    assert proc.returncode == 3
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: worker rank 1 '), err
    assert 'exited with code 3' in lines[0] and 'Traceback' not in err
    assert env[MARK] not in err  # nothing of the environment is printed


def test_bad_flags_on_every_worker_end_the_job(fashion_slice, tmp_path):  # noqa: F811
    env = job_env()
    proc = start(['-n', '2', '-s', '1', sys.executable, 'train_model.py', '--kv-store',
                  'dist_sync', '--dataset', 'fashion-mnist', '--data-dir', fashion_slice,
                  '--log-dir', str(tmp_path), '--cpu', '--depth', '7'], env)
    finish(proc, env)
    proc.stdout, proc.stderr = proc.stdout_text, proc.stderr_text
    assert_one_line_error(proc, 'invalid depth 7', 'exited with code 2')
    assert os.listdir(str(tmp_path)) == []


def test_a_silent_job_ends_after_the_stall_timeout(stand_in):
    """A worker blocked for good (as on a server that stopped answering) prints nothing."""
    env = job_env()
    proc = start(['-n', '1', '-s', '1', '--stall-timeout', '3'] + stand_in + ['silent'], env)
    _, err = finish(proc, env)
    assert proc.returncode == 1
    lines = err.splitlines()
    assert len(lines) == 1 and 'printed anything for 3 s' in lines[0], err


def test_workers_that_would_start_at_different_epochs_refuse(tmp_path):
    """As when a worker sees an older checkpoint than rank 0 (a snapshot folder that is
    not shared): every worker refuses with one line instead of training other epochs."""
    script = tmp_path / 'start.py'
    script.write_text(textwrap.dedent('''
        import sys
        sys.path.insert(0, %r)
        import mxnet as mx
        from engine.dist import DistSync
        from common.errors import run_main
        def main(argv):
            kv = mx.kv.create('dist_sync')
            net = mx.gluon.nn.Dense(2, in_units=3)
            net.initialize()
            DistSync(kv, net, start_epoch=int(argv[kv.rank]))
        run_main(main, sys.argv[1:])
    ''' % ROOT))
    for epochs, code in ((['4', '4'], 0), (['4', '3'], 2)):
        env = job_env()
        proc = start(['-n', '2', '-s', '1', sys.executable, str(script)] + epochs, env)
        _, err = finish(proc, env)
        assert proc.returncode == code, err
    assert 'would start at different epochs' in err and len(err.splitlines()) == 1, err


def _fake_ssh(folder):
    """An `ssh` that runs the remote command here, in a session of its own (as on another
    host), and passes its standard input on, so the remote side sees it close when this
    `ssh` dies: the way a dropped connection looks to sshd."""
    path = folder / 'ssh'
    path.write_text(textwrap.dedent('''\
        #!%s
        import os, subprocess, sys, threading
        args = sys.argv[1:]
        while args[0].startswith('-'):
            args = args[2:]
        remote = subprocess.Popen(['bash', '-c', args[1]], stdin=subprocess.PIPE,
                                  start_new_session=True)
        def copy_input():
            for chunk in iter(lambda: os.read(0, 4096), b''):
                remote.stdin.write(chunk)
            remote.stdin.close()
        threading.Thread(target=copy_input, daemon=True).start()
        code = remote.wait()
        sys.exit(code if code >= 0 else 128 - code)
    ''' % sys.executable))
    path.chmod(0o755)


def test_ssh_job_a_killed_remote_worker_ends_every_remote_process(stand_in, tmp_path):
    _fake_ssh(tmp_path)
    (tmp_path / 'hosts').write_text('127.0.0.1\n127.0.0.1:22\n')
    env = job_env(PATH='%s:%s' % (tmp_path, os.environ['PATH']))
    release = tmp_path / 'release'  # never written: the workers wait until stopped
    proc = start(['-n', '2', '-s', '1', '-H', str(tmp_path / 'hosts'), '--host-ip',
                  '127.0.0.1'] + stand_in + ['wait-for-file', str(release)], env)
    seen = []
    wait_for_line(proc.stdout, r'Node\[\d\] joined', seen)
    wait_for_line(proc.stdout, r'Node\[\d\] joined', seen)
    # each remote worker runs under its guard (`python -c SOURCE ...`)
    workers = [p for p in processes_of(env) if p.environ().get('DMLC_ROLE') == 'worker'
               and '-c' not in p.cmdline()]
    assert len(workers) == 2 and all('-c' in w.parent().cmdline() for w in workers)
    workers[0].kill()
    _, err = finish(proc, env)
    assert proc.returncode == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: worker rank '), err
    assert 'killed by SIGKILL on 127.0.0.1' in lines[0]


def test_killed_worker_ends_the_job_and_resume_completes_the_run(fashion_slice, tmp_path):  # noqa: F811,E501
    """kill -9 a worker in epoch 1: the launcher stops the rest and exits, naming the dead
    worker and the checkpoint, within about 6 s (a 0.2 s poll, at most 5 s from SIGTERM to
    SIGKILL, at most 1 s for the last output); --resume then finishes the run."""
    command = ['-n', '2', '-s', '1', sys.executable, 'train_model.py', '--kv-store',
               'dist_sync', '--dataset', 'fashion-mnist', '--data-dir', fashion_slice,
               '--log-dir', str(tmp_path), '--network', 'cross', '--depth', '14', '--cpu',
               '--batch-size', '32', '--test-batch-size', '64', '--num-epochs', '2',
               '--rand-seed', '3', '--log-iters', '4', '--no-progress']
    env = job_env()
    proc = start(command, env, stderr=subprocess.STDOUT)
    seen = []
    wait_for_line(proc.stdout, r'Node\[\d\] Epoch\[1\] Batch \[4\]', seen)
    worker = next(p for p in processes_of(env) if p.environ().get('DMLC_ROLE') == 'worker')
    worker.kill()
    out, _ = finish(proc, env)
    assert proc.returncode == 1
    last = out.splitlines()[-1]
    assert last.startswith('error: worker rank ') and 'pid %d' % worker.pid in last, last
    assert 'killed by SIGKILL' in last and '--resume' in last and '-0001.params' in last
    assert 'Traceback' not in ''.join(seen) + out

    env = job_env()
    resumed = subprocess.run(LAUNCH + command + ['--resume'], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert processes_of(env) == []
    report = get_results.collect(str(tmp_path))
    assert report.notes == [] and len(report.configurations) == 1
    (run,) = report.configurations[0].runs
    assert run.complete and run.epochs_done == 2
    assert [r.epoch for r in logs.parse_log(run.path).records] == [0, 1]


def test_how_to_continue_names_the_newest_checkpoint_not_its_averaged_weights(tmp_path):
    """--ema writes <prefix>-<epoch>.ema.params after the weights: not a checkpoint."""
    import time
    from tools.dist import launch
    folder = tmp_path / 'fashion-mnist' / 'cross' / 'weights' / 'run1'
    folder.mkdir(parents=True)
    for name in ('run1-0001.params', 'run1-0002.params', 'run1-0002.ema.params'):
        (folder / name).write_text('')
        time.sleep(0.01)   # mtimes in writing order
    text = launch.how_to_continue(['python', 'train_model.py', '--log-dir', str(tmp_path)])
    assert '(%s)' % (folder / 'run1-0002.params') in text and '--resume' in text
