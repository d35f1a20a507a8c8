"""tools/launch.py --launcher slurm without SLURM: the tests start the tasks themselves on
127.0.0.1, each with the variables srun would give it (SLURM_JOB_NODELIST=localhost), and
put a stand-in `scancel` on the PATH that ends the step's tasks as SLURM would (SIGTERM).
Also the node-list expansion, the roles, the port, and slots=N in ssh host files.
"""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from common.errors import UserError
from helpers import assert_one_line_error
from test_launch_faults import LAUNCH, job_env, processes_of
from test_training import (ROOT, assert_two_workers_stayed_identical,  # noqa: F401
                           dist_sync_training_flags, fashion_slice)
from tools.dist import launch, slurm

JOB_ID, STEP_ID = '4711', '0'


# ---------------------------------------------------------------- node lists

@pytest.mark.parametrize('text, hosts', [
    ('localhost', ['localhost']),
    ('node[01-03,07]', ['node01', 'node02', 'node03', 'node07']),
    ('node[8-11]', ['node8', 'node9', 'node10', 'node11']),             # no padding
    ('node[098-101]', ['node098', 'node099', 'node100', 'node101']),    # padding kept
    ('n[0-2]', ['n0', 'n1', 'n2']),
    ('gpu[1,3-4]-ib', ['gpu1-ib', 'gpu3-ib', 'gpu4-ib']),                # a suffix
    ('rack[1-2]-n[01-02]', ['rack1-n01', 'rack1-n02', 'rack2-n01', 'rack2-n02']),
    ('a[1-2],b,c[05-06]x', ['a1', 'a2', 'b', 'c05x', 'c06x']),
    ('cn[7],login1,cn[009-010,12]', ['cn7', 'login1', 'cn009', 'cn010', 'cn12']),
    ('x[1-2]y[3]z[0-1]', ['x1y3z0', 'x1y3z1', 'x2y3z0', 'x2y3z1']),
    ('h1.example.org,h2.example.org', ['h1.example.org', 'h2.example.org']),
])
def test_node_lists_expand_as_scontrol_show_hostnames(text, hosts):
    assert slurm.expand_nodelist(text) == hosts


@pytest.mark.parametrize('text, words', [
    ('node[01-03', ['brackets do not match']),
    ('node]1[', ['brackets do not match']),
    ('node[[1-2]]', ['brackets do not match']),
    ('node[3-1]', ['runs backwards']),
    ('node[a-b]', ['[a-b] is not a list of numbers']),
    ('node[]', ['[] is not a list of numbers']),
    ('node[1-2,]', ['is not a list of numbers']),
    ('a,,b', ['empty host']),
    ('', ['empty host']),
])
def test_bad_node_lists_are_refused(text, words):
    with pytest.raises(UserError) as err:
        slurm.expand_nodelist(text)
    for word in words:
        assert word in str(err.value)


# ---------------------------------------------------------------- roles, ports

def srun_env(procid, ntasks=4, **extra):
    env = dict(SLURM_PROCID=str(procid), SLURM_NTASKS=str(ntasks), SLURM_JOB_ID=JOB_ID,
               SLURM_STEP_ID=STEP_ID, SLURM_JOB_NODELIST='localhost')
    env.update(extra)
    return env


def test_tasks_take_the_roles_in_order():
    tasks = [slurm.task_from_env(srun_env(i, 6), 2, 3) for i in range(6)]
    assert [(t.role, t.index, t.count) for t in tasks] == [
        ('scheduler', 0, 1), ('server', 0, 2), ('server', 1, 2),
        ('worker', 0, 3), ('worker', 1, 3), ('worker', 2, 3)]
    # every task agrees on the scheduler: the first host, a port from the job id
    assert {(t.root_host, t.port, t.job_step) for t in tasks} == {
        ('localhost', 20000 + 4711, '4711.0')}


def test_the_port_comes_from_the_job_id_or_the_flag():
    assert slurm.derived_port(12) == 20012
    assert slurm.derived_port(40012) == 20012 and slurm.derived_port(39999) == 59999
    task = slurm.task_from_env(srun_env(1, SLURM_JOB_NODELIST='node[03-04]'), 1, 2, port=6000)
    assert (task.port, task.root_host, task.job_step) == (6000, 'node03', '4711.0')


def test_srun_variables_missing_or_wrong_are_one_line_errors():
    env = srun_env(0)
    del env['SLURM_STEP_ID']   # the batch script itself, not a task of srun
    with pytest.raises(UserError, match=r'SLURM_STEP_ID not set: run it under srun, one task '
                                        r'per process: srun --ntasks=4 '):
        slurm.task_from_env(env, 1, 2)
    with pytest.raises(UserError, match=r'srun started 3 tasks; -n 2 -s 1 needs 4'):
        slurm.task_from_env(srun_env(0, ntasks=3), 1, 2)
    with pytest.raises(UserError, match=r"SLURM_PROCID='x' is not a task number"):
        slurm.task_from_env(srun_env('x'), 1, 2)
    # srun's older spelling of the step
    env = srun_env(2)
    env['SLURM_STEPID'] = env.pop('SLURM_STEP_ID')
    assert slurm.task_from_env(env, 1, 2).job_step == '4711.0'


def test_the_scheduler_must_run_on_the_first_host():
    task = slurm.task_from_env(srun_env(0, SLURM_NODEID='1'), 1, 2)
    with pytest.raises(UserError, match='task 0 .* runs on node 1 of the job, not on its '
                                        'first host localhost'):
        launch.slurm_addresses(task)
    worker = slurm.task_from_env(srun_env(3, SLURM_NODEID='1'), 1, 2)
    assert launch.slurm_addresses(worker) == ('127.0.0.1', '127.0.0.1')


@pytest.mark.slow
@pytest.mark.parametrize('argv, words', [
    (['-n', '2', '--launcher', 'slurm', '-H', 'hosts', 'python', 'x.py'],
     ['SLURM_JOB_NODELIST', '--hostfile']),
    (['-n', '2', '--port', '5000', 'python', 'x.py'], ['--port is for --launcher slurm']),
    (['-n', '2', '--launcher', 'slurm', '--port', '70000', 'python', 'x.py'], ['65535']),
    (['-n', '2', '-s', '1', '--launcher', 'slurm', 'python', 'x.py'],
     ['SLURM_PROCID, SLURM_NTASKS, SLURM_JOB_NODELIST, SLURM_JOB_ID, SLURM_STEP_ID not set',
      'srun --ntasks=4']),
])
def test_bad_slurm_launches_are_one_line_errors(argv, words):
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM')}
    proc = subprocess.run(LAUNCH + argv, cwd=ROOT, capture_output=True, text=True, env=env)
    assert_one_line_error(proc, *words)


# ---------------------------------------------------------------- a step on 127.0.0.1

def fake_scancel(folder):
    """`scancel JOB.STEP` as SLURM does it to a step: SIGTERM to each of its tasks (the
    processes listed in folder/tasks), itself included; it notes what it was asked."""
    path = folder / 'scancel'
    path.write_text(textwrap.dedent('''\
        #!%s
        import os, signal, sys
        folder = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(folder, 'scancel.calls'), 'a') as calls:
            calls.write(' '.join(sys.argv[1:]) + '\\n')
        for pid in open(os.path.join(folder, 'tasks')).read().split():
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
    ''' % sys.executable))
    path.chmod(0o755)


def run_step(folder, launcher_argv, command, ntasks, timeout=240):
    """Start the step's tasks as srun would, wait for all; (return codes, stdout, stderr)."""
    fake_scancel(folder)
    port = launch.free_port(launch.LOOPBACK)
    env = job_env(PATH='%s:%s' % (folder, os.environ['PATH']))
    tasks = []
    for procid in range(ntasks):
        task_env = dict(env, **srun_env(procid, ntasks, SLURM_NODEID='0'))
        tasks.append(subprocess.Popen(
            LAUNCH + ['--launcher', 'slurm', '--port', str(port)] + launcher_argv + command,
            cwd=ROOT, env=task_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True))
    (folder / 'tasks').write_text(' '.join(str(t.pid) for t in tasks))
    outputs = []
    try:
        for task in tasks:
            outputs.append(task.communicate(timeout=timeout))
    finally:
        for task in tasks:
            if task.poll() is None:
                os.killpg(task.pid, signal.SIGKILL)
        for left in processes_of(env):
            left.kill()
    assert processes_of(env) == []
    return ([t.returncode for t in tasks], ''.join(out for out, _ in outputs),
            ''.join(err for _, err in outputs))


@pytest.mark.slow
def test_slurm_tasks_train_two_workers_that_stay_identical(fashion_slice, tmp_path):  # noqa: F811,E501
    """The local dist_sync test's run and checks, as four srun tasks on 127.0.0.1."""
    command = [sys.executable, 'train_model.py'] + dist_sync_training_flags(
        fashion_slice, tmp_path / 'snap')
    codes, out, err = run_step(tmp_path, ['-n', '2', '-s', '1'], command, 4)
    assert codes == [0, 0, 0, 0], (out + err)[-3000:]
    assert_two_workers_stayed_identical(out + err, tmp_path / 'snap')
    assert not (tmp_path / 'scancel.calls').exists()


STAND_IN = textwrap.dedent('''
    import os
    import mxnet as mx
    kv = mx.kv.create('dist_sync')
    print('Node[%d] joined' % kv.rank, flush=True)
    if kv.rank == 1:
        os._exit(3)   # at once (sys.exit would wait in ps-lite's finalize for the others)
    kv._barrier()     # rank 0 waits for the failed rank 1 for ever, as a real job would
''')


@pytest.mark.slow
def test_a_failing_task_cancels_the_step_with_one_line(tmp_path):
    script = tmp_path / 'stand_in.py'
    script.write_text(STAND_IN)
    codes, out, err = run_step(tmp_path, ['-n', '2', '-s', '1'],
                               [sys.executable, str(script)], 4, timeout=120)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('error: worker rank 1 (pid ') and ' on ' in lines[0]
    assert 'exited with code 3; cancelled the job step %s.%s (scancel)' % (JOB_ID, STEP_ID) \
        in lines[0]
    assert (tmp_path / 'scancel.calls').read_text() == '%s.%s\n' % (JOB_ID, STEP_ID)
    # the failed worker's task exits with its code; the others were stopped by SIGTERM
    assert sorted(codes) == [3, 143, 143, 143], codes
    assert 'Traceback' not in out + err


@pytest.mark.slow
def test_bad_flags_on_every_worker_give_one_line(fashion_slice, tmp_path):  # noqa: F811
    """Both workers fail at once: the first task in SLURM_PROCID order reports, its scancel
    silences the other."""
    command = [sys.executable, 'train_model.py', '--kv-store', 'dist_sync', '--dataset',
               'fashion-mnist', '--data-dir', fashion_slice, '--log-dir',
               str(tmp_path / 'snap'), '--cpu', '--depth', '7']
    codes, out, err = run_step(tmp_path, ['-n', '2', '-s', '1'], command, 4, timeout=120)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: worker process 1 of 2 '), err
    assert 'exited with code 2: invalid depth 7' in lines[0]
    assert sorted(codes) == [2, 143, 143, 143], codes
    assert not (tmp_path / 'snap').exists()


# ---------------------------------------------------------------- slots in ssh host files

def test_ssh_host_file_slots_give_a_host_that_many_processes_in_a_row(tmp_path):
    hosts = tmp_path / 'hosts'
    hosts.write_text('# two on a, one on b\na:2222 slots=2\n\nb  # a comment\nc slots=1\n')
    args = launch.parse(['-n', '3', '-s', '1', '-H', str(hosts), '--host-ip', '10.0.0.1',
                         'python', 'x.py'])
    root, places = launch.placements(args)
    assert root == '10.0.0.1'
    assert [host for _, host, _ in places] == ['a', 'a', 'b', 'c']
    assert [spawn.args for spawn, _, _ in places] == [('a', '2222'), ('a', '2222'),
                                                      ('b', '22'), ('c', '22')]


@pytest.mark.slow
@pytest.mark.parametrize('line, words', [
    ('a slots=0', ["line 2: 'slots=0' is not slots=N with N >= 1"]),
    ('a slots=two', ["'slots=two'"]),
    ('a max_slots=4', ["'max_slots=4'", 'host[:ssh port] [slots=N]']),
])
def test_bad_slots_are_one_line_errors(tmp_path, line, words):
    hosts = tmp_path / 'hosts'
    hosts.write_text('b\n%s\n' % line)
    proc = subprocess.run(LAUNCH + ['-n', '2', '-H', str(hosts), 'python', 'x.py'], cwd=ROOT,
                          capture_output=True, text=True)
    assert_one_line_error(proc, str(hosts), *words)
