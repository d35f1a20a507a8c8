"""Launch a distributed (dist_sync) job: a scheduler, servers and workers of MXNet's
parameter server, here, on several hosts through ssh, or as the tasks of a SLURM job step.

    python tools/launch.py -n 2 -s 1 python train_model.py --kv-store dist_sync ...
    python tools/launch.py -n 2 -H hosts python train_model.py --kv-store dist_sync ...
    srun --ntasks=4 python tools/launch.py --launcher slurm -n 2 -s 1 python train_model.py ...

Local jobs (the default, or --launcher local) listen on 127.0.0.1 only. A job on several
hosts runs its scheduler here, on --host-ip (default: the address of this machine's
outgoing interface), and one server or worker per host line, round robin. MXNet's
parameter server has no authentication: run it on a private network only.

Under srun (--launcher slurm) every task runs this script and becomes one process of the
job, by its SLURM_PROCID: 0 the scheduler (on the first host of SLURM_JOB_NODELIST), then
the servers, then the workers (tools/dist/slurm.py).

The first process that fails ends the job: the launcher stops all the others and prints one
line (which process, how it ended, how to continue). So does a job that prints nothing for
--stall-timeout seconds, which is how a worker waiting for a lost server looks.
"""
import functools
import ipaddress
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

from common.errors import ArgumentParser, UserError
from common.reading import open_regular
from tools.dist import job as dist_job, remote_guard, slurm

LOOPBACK = '127.0.0.1'
# SLURM tasks whose processes fail together (the same bad flag on every worker) report in
# SLURM_PROCID order, this far apart: the first one's scancel silences the others.
REPORT_STAGGER_S, REPORT_DELAY_MAX_S = 1.0, 30.0
PASSED_TO_HOSTS = ('OMP_NUM_THREADS', 'MXNET_ENGINE_TYPE')  # besides DMLC_* and PS_*


def parse(argv):
    parser = ArgumentParser(prog='tools/launch.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--num-workers', type=int, required=True)
    parser.add_argument('-s', '--num-servers', type=int,
                        help='parameter servers (default: as many as workers)')
    parser.add_argument('-H', '--hostfile',
                        help='one `host[:ssh port] [slots=N]` a line; implies --launcher ssh')
    parser.add_argument('--launcher', choices=('local', 'ssh', 'slurm'),
                        help='default: ssh with --hostfile, else local; slurm: run under '
                        'srun, one task per process')
    parser.add_argument('--host-ip', help='ssh jobs: the address the hosts reach this '
                        "machine's scheduler on (default: this machine's outgoing address)")
    parser.add_argument('--port', type=int, help='slurm jobs: the scheduler\'s port '
                        '(default: %d + SLURM_JOB_ID mod %d)' % (slurm.PORT_BASE,
                                                                 slurm.PORT_SPAN))
    parser.add_argument('--stall-timeout', type=float, default=1800, metavar='SECONDS',
                        help='end the job when no process printed anything for this long '
                        '(0: never)')
    parser.add_argument('command', nargs='...', help='the command every process runs')
    args = parser.parse_args(argv)
    check(args)
    return args


def check(args):
    if args.num_workers < 1:
        raise UserError('-n/--num-workers must be at least 1, not %d' % args.num_workers)
    if args.num_servers is None:
        args.num_servers = args.num_workers
    if args.num_servers < 1:
        raise UserError('-s/--num-servers must be at least 1 (dist_sync needs a server), '
                        'not %d' % args.num_servers)
    if not args.command:
        raise UserError('no command to launch: add it after the options, e.g. '
                        'python train_model.py --kv-store dist_sync ...')
    if args.launcher is None:
        args.launcher = 'ssh' if args.hostfile else 'local'
    if args.launcher == 'ssh' and not args.hostfile:
        raise UserError('--launcher ssh needs -H/--hostfile')
    if args.launcher == 'local' and (args.hostfile or args.host_ip):
        raise UserError('--launcher local keeps the job on 127.0.0.1; -H/--hostfile and '
                        '--host-ip are for --launcher ssh')
    if args.launcher == 'slurm' and (args.hostfile or args.host_ip):
        raise UserError('--launcher slurm takes its hosts from SLURM_JOB_NODELIST; '
                        '-H/--hostfile and --host-ip are for --launcher ssh')
    if args.port is not None and (args.launcher != 'slurm' or not 0 < args.port < 65536):
        raise UserError('--port is for --launcher slurm, a port number from 1 to 65535 '
                        '(the other launchers pick a free one)')
    if args.stall_timeout < 0:
        raise UserError('--stall-timeout must be >= 0 seconds')


def read_hosts(path):
    """(host, ssh port, slots) per line of `host[:port] [slots=N]`; blank and # lines
    skipped; a line without slots counts as slots=1."""
    try:
        with open_regular(path, 'r', what='host file') as handle:   # a FIFO would block
            lines = [line.split('#')[0].split() for line in handle]
    except OSError as err:
        raise UserError('cannot read host file %s (%s)' % (path, err.strerror))
    hosts = []
    for number, words in enumerate(lines, 1):
        if words:
            host, _, port = words[0].partition(':')
            hosts.append((host, port or '22', _slots(words[1:], path, number)))
    if not hosts:
        raise UserError('host file %s names no host' % path)
    return hosts


def _slots(options, path, number):
    """The N of `slots=N` (1 without it); anything else on the line is refused: a host
    file written for another launcher must not be half understood."""
    slots = 1
    for option in options:
        name, _, value = option.partition('=')
        if name != 'slots' or not value.isdigit() or int(value) < 1:
            raise UserError('host file %s, line %d: %r is not slots=N with N >= 1 (a line '
                            'is `host[:ssh port] [slots=N]`)' % (path, number, option))
        slots = int(value)
    return slots


def outgoing_address(toward='10.255.255.255'):
    """The address of the interface this machine reaches `toward` (other hosts) through."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((toward, 1))  # UDP: sends nothing, only picks a route
        return probe.getsockname()[0]


def free_port(address):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def ps_env(role, root_uri, root_port, args, node_host):
    """What ps-lite reads. DMLC_NODE_HOST is also the address a node binds to (without it,
    servers and workers listen on the machine's network interface)."""
    return {'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': root_uri,
            'DMLC_PS_ROOT_PORT': str(root_port), 'DMLC_NUM_SERVER': str(args.num_servers),
            'DMLC_NUM_WORKER': str(args.num_workers), 'DMLC_NODE_HOST': node_host}


def _set_parent_death_signal():
    """A local member gets SIGKILL should the launcher itself die (Linux only)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn_local(command, extra_env):
    env = dict(os.environ, **extra_env)
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_set_parent_death_signal)


def spawn_ssh(host, port, command, extra_env):
    """ssh to `host`, run `command` under tools/dist/remote_guard.py in the same directory.
    ssh's standard input stays open and unused: the guard ends the remote process group
    when it closes. The environment travels as `export` words, never printed."""
    passed = {k: v for k, v in os.environ.items()
              if k.startswith('PS_') or k in PASSED_TO_HOSTS}
    passed.update(extra_env)
    exports = ' '.join('export %s=%s;' % (k, shlex.quote(v)) for k, v in passed.items())
    python = command[0] if os.path.basename(command[0]).startswith('python') else 'python3'
    with open(remote_guard.__file__) as handle:
        guard = handle.read()
    remote = '%s cd %s && exec %s' % (exports, shlex.quote(os.getcwd()), ' '.join(
        shlex.quote(word) for word in [python, '-c', guard] + list(command)))
    ssh = ['ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'ServerAliveInterval=15',
           '-o', 'ServerAliveCountMax=4', '-p', port, host, remote]
    return subprocess.Popen(ssh, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def placements(args):
    """The scheduler's address, and the places servers and workers go to in turn: (spawn
    function, address the process binds to, host named in messages). A host with slots=N
    is N places in a row: of every round over the host file it takes N processes."""
    if args.launcher == 'local':
        return LOOPBACK, [(spawn_local, LOOPBACK, None)]
    hosts = read_hosts(args.hostfile)
    return args.host_ip or outgoing_address(), [
        (functools.partial(spawn_ssh, host, port), host, host)
        for host, port, slots in hosts for _ in range(slots)]


def start_job(args, job):
    """The scheduler first (here), then the servers, then the workers."""
    root, places = placements(args)
    port = free_port(root)
    roles = [('server', i, args.num_servers) for i in range(args.num_servers)]
    roles += [('worker', i, args.num_workers) for i in range(args.num_workers)]
    try:
        job.add(dist_job.Member('scheduler', 0, 1, spawn_local(
            args.command, ps_env('scheduler', root, port, args, root))))
        for slot, (role, index, count) in enumerate(roles):
            spawn, node_host, shown = places[slot % len(places)]
            proc = spawn(args.command, ps_env(role, root, port, args, node_host))
            job.add(dist_job.Member(role, index, count, proc, shown))
    except OSError as err:
        job.stop()
        raise UserError('cannot start %s (%s)' % (err.filename or args.command[0],
                                                  err.strerror))


def flag_value(command, flag, default):
    """The value of `--flag X` or `--flag=X` in the launched command."""
    for i, word in enumerate(command):
        if word == flag and i + 1 < len(command):
            return command[i + 1]
        if word.startswith(flag + '='):
            return word.split('=', 1)[1]
    return default


def last_checkpoint(log_dir):
    """The newest weights file under the command's --log-dir, if this machine sees it."""
    newest, newest_time = None, 0
    for folder, _, files in os.walk(log_dir):
        for name in files:
            if name.endswith('.params') and not name.endswith('.ema.params'):
                path = os.path.join(folder, name)
                mtime = os.stat(path).st_mtime
                if mtime > newest_time:
                    newest, newest_time = path, mtime
    return newest


def how_to_continue(command):
    log_dir = flag_value(command, '--log-dir', './snapshot/')
    checkpoint = last_checkpoint(log_dir)
    again = ('run the same command again' if '--resume' in command
             else 'run the same command with --resume')
    if checkpoint is None:
        return 'no checkpoint under %s yet: run the same command again' % log_dir
    return 'to continue from the last checkpoint (%s), %s' % (checkpoint, again)


def verdict(ended, stopped, command):
    """The launcher's one line on a failed job."""
    if ended[0] == 'stall':
        return stall_verdict(ended[1], 'stopped the job (%d processes)' % stopped, command)
    others = ('stopped the job\'s %d other processes' % stopped if stopped
              else 'the job\'s other processes had ended')
    return failure_verdict(ended, others, command)


def stall_verdict(seconds, others, command):
    what = ('no process printed anything for %g s (a worker waiting for a server that '
            'stopped answering, or for a scheduler it cannot reach?)' % seconds)
    return '%s; %s; %s' % (what, others, how_to_continue(command))


def failure_verdict(ended, others, command):
    """`<who> <how it ended>; <what became of the others>; <how to continue>`."""
    member, code = ended
    what = '%s %s' % (member.name(), dist_job.describe_exit(member, code))
    if code == 2 and member.error_line:  # bad input: its own message says what to fix
        return '%s: %s; %s' % (what, member.error_line, others)
    return '%s; %s; %s' % (what, others, how_to_continue(command))


class Interrupted(Exception):
    pass


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def _ignore_signals():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def exit_code(ended):
    code = ended[1] if ended[0] != 'stall' else 1
    return code if 0 < code < 128 else 1


# ---------------------------------------------------------------- one task under srun

def slurm_addresses(task):
    """(the scheduler's address, the address this task's process binds to). ps-lite binds
    to addresses, not names: the first host's name is resolved here, the same in every
    task. Off a loopback scheduler, a process binds to its interface toward the scheduler."""
    try:
        root = socket.gethostbyname(task.root_host)
    except OSError as err:
        raise UserError('--launcher slurm: cannot resolve %s, the first host of '
                        'SLURM_JOB_NODELIST (%s)' % (task.root_host, err))
    if task.role == 'scheduler':
        if task.node_id != 0:
            raise UserError('--launcher slurm: task 0 (the scheduler) runs on node %d of the '
                            'job, not on its first host %s where the others look for it: use '
                            "srun's block (default) or cyclic --distribution"
                            % (task.node_id, task.root_host))
        return root, root
    return root, LOOPBACK if ipaddress.ip_address(root).is_loopback else outgoing_address(root)


def cancel_step(job_step):
    """End the other tasks of the step (they wait for the failed one forever otherwise);
    what happened, for the launcher's line."""
    try:
        done = subprocess.run(['scancel', job_step], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 'could not cancel the job step %s (scancel: %s)' % (job_step, err)
    if done.returncode:
        return 'could not cancel the job step %s (scancel: %s)' % (
            job_step, (done.stderr.strip().splitlines() or ['exit code %d' % done.returncode])[0])
    return 'cancelled the job step %s (scancel), which stops its other tasks' % job_step


def run_slurm_task(args):
    """This task's one process of the job; on its failure, one line and the step cancelled.
    A task stopped by a signal (the step cancelled, srun interrupted) stops its process
    and says nothing: srun reports that itself, and the failed task has said why. A failed
    task waits REPORT_STAGGER_S per task before it, so that of several failing at once
    only the first one speaks."""
    task = slurm.task_from_env(os.environ, args.num_servers, args.num_workers, args.port)
    root, own = slurm_addresses(task)
    # servers and the scheduler print nothing while the job runs: only workers can stall
    job = dist_job.Job(args.stall_timeout if task.role == 'worker' else 0)
    try:
        proc = spawn_local(args.command, ps_env(task.role, root, task.port, args, own))
    except OSError as err:
        raise UserError('cannot start %s (%s)' % (err.filename or args.command[0],
                                                  err.strerror))
    node = os.environ.get('SLURMD_NODENAME') or socket.gethostname()
    job.add(dist_job.Member(task.role, task.index, task.count, proc, node=node))
    try:
        ended = job.watch()
        if ended is not None:
            time.sleep(min(REPORT_STAGGER_S * task.procid, REPORT_DELAY_MAX_S))
    except Interrupted as why:
        _ignore_signals()
        job.stop()
        return 128 + signal.Signals[str(why)]
    _ignore_signals()
    job.stop()
    if ended is None:
        return 0
    cancelled = cancel_step(task.job_step)
    if ended[0] == 'stall':
        line = stall_verdict(ended[1], cancelled, args.command)
    else:
        line = failure_verdict(ended, cancelled, args.command)
    print('error: ' + line, file=sys.stderr)
    return exit_code(ended)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    if args.launcher == 'slurm':
        return run_slurm_task(args)
    job = dist_job.Job(args.stall_timeout)
    try:
        start_job(args, job)
        ended = job.watch()
    except Interrupted as why:
        _ignore_signals()
        stopped = job.stop()
        print('interrupted (%s): stopped the job (%d processes); %s' % (
            why, stopped, how_to_continue(args.command)), file=sys.stderr)
        return 130
    _ignore_signals()  # a second Ctrl-C must not cut the stopping short
    stopped = job.stop()
    if ended is None:
        return 0
    print('error: ' + verdict(ended, stopped, args.command), file=sys.stderr)
    return exit_code(ended)

