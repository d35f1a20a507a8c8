"""What one task of a SLURM job step is in a parameter-server job (tools/launch.py
--launcher slurm): its role, where the scheduler listens, on which port.

srun starts the same command once per task and tells each task who it is through its
environment: SLURM_PROCID (0..SLURM_NTASKS-1), SLURM_JOB_NODELIST (the job's hosts, in
SLURM's compressed form, e.g. `node[01-03,07],gpu5`), SLURM_JOB_ID and SLURM_STEP_ID. Task 0
is the scheduler, on the first host of the node list (where srun's default block
distribution puts it); tasks 1..S are the servers, the rest the workers.
"""
import re
from dataclasses import dataclass

from common.errors import UserError

PORT_BASE, PORT_SPAN = 20000, 40000   # derived ports: 20000..59999, below Linux's ephemeral
REQUIRED = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_JOB_NODELIST', 'SLURM_JOB_ID')
_RANGE = re.compile(r'^(\d+)(?:-(\d+))?$')


# ---------------------------------------------------------------- node lists

def expand_nodelist(text):
    """The host names of a SLURM node list, in order, as `scontrol show hostnames` prints
    them: `node[01-03,07]` -> node01 node02 node03 node07; several bracket groups in one
    name give every combination, the first group varying slowest; a range keeps the zero
    padding of its lower bound."""
    hosts = []
    for name in _split_outside_brackets(text.strip(), text):
        hosts.extend(_expand_name(name, text))
    return hosts


def _split_outside_brackets(text, whole):
    names, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == '[':
            depth += 1
        elif char == ']':
            depth -= 1
        if depth not in (0, 1):
            raise UserError('SLURM node list %r: brackets do not match' % whole)
        if char == ',' and depth == 0:
            names.append(text[start:i])
            start = i + 1
    if depth:
        raise UserError('SLURM node list %r: brackets do not match' % whole)
    names.append(text[start:])
    if not all(names):
        raise UserError('SLURM node list %r names an empty host' % whole)
    return names


def _expand_name(name, whole):
    """`rack[1-2]-n[01-02]` -> rack1-n01, rack1-n02, rack2-n01, rack2-n02."""
    opening = name.find('[')
    if opening < 0:
        return [name]
    closing = name.index(']', opening)
    head, rest = name[:opening], name[closing + 1:]
    tails = _expand_name(rest, whole) if rest else ['']
    return [head + number + tail for number in _numbers(name[opening + 1:closing], whole)
            for tail in tails]


def _numbers(ranges, whole):
    """`01-03,7` -> 01 02 03 7."""
    numbers = []
    for part in ranges.split(','):
        match = _RANGE.match(part)
        if not match:
            raise UserError('SLURM node list %r: [%s] is not a list of numbers and ranges '
                            '(e.g. [01-03,07])' % (whole, ranges))
        low, high = match.group(1), match.group(2) or match.group(1)
        if int(high) < int(low):
            raise UserError('SLURM node list %r: the range %s runs backwards' % (whole, part))
        width = len(low) if low.startswith('0') else 0
        numbers.extend('%0*d' % (width, n) for n in range(int(low), int(high) + 1))
    return numbers


# ---------------------------------------------------------------- one task

@dataclass
class Task:
    procid: int        # SLURM_PROCID
    role: str          # scheduler, server or worker
    index: int         # its place among its role
    count: int         # how many of its role
    root_host: str     # the first host of the node list: the scheduler's
    port: int
    job_step: str      # JOB.STEP, what scancel cancels
    node_id: int       # SLURM_NODEID: the task's host among the step's (0: the first)


def role_of(procid, num_servers, num_workers):
    """(role, index, count) of task `procid`: 0 the scheduler, then servers, then workers."""
    if procid == 0:
        return 'scheduler', 0, 1
    if procid <= num_servers:
        return 'server', procid - 1, num_servers
    return 'worker', procid - 1 - num_servers, num_workers


def derived_port(job_id):
    """The scheduler's port when --port is not given: the same in every task of a job, and
    different for jobs that share a host (unless their ids differ by a multiple of 40000)."""
    return PORT_BASE + job_id % PORT_SPAN


def task_from_env(environ, num_servers, num_workers, port=None):
    """This task's place in the job, from srun's variables; a one-line error when they are
    missing or disagree with -n/-s."""
    needed = 1 + num_servers + num_workers
    how = ('run it under srun, one task per process: srun --ntasks=%d python tools/launch.py '
           '--launcher slurm -n %d -s %d ...' % (needed, num_workers, num_servers))
    missing = [name for name in REQUIRED if not environ.get(name)]
    if 'SLURM_STEP_ID' not in environ and 'SLURM_STEPID' not in environ:
        missing.append('SLURM_STEP_ID')   # set by srun, not in the batch script itself
    if missing:
        raise UserError('--launcher slurm: %s not set: %s' % (', '.join(missing), how))
    procid, ntasks = _int_var(environ, 'SLURM_PROCID'), _int_var(environ, 'SLURM_NTASKS')
    if ntasks != needed:
        raise UserError('--launcher slurm: srun started %d tasks; -n %d -s %d needs %d (a '
                        'scheduler, %d servers, %d workers): %s' % (
                            ntasks, num_workers, num_servers, needed, num_servers,
                            num_workers, how))
    job = _int_var(environ, 'SLURM_JOB_ID')
    step = environ.get('SLURM_STEP_ID', environ.get('SLURM_STEPID'))
    if port is None:
        port = derived_port(job)
    role, index, count = role_of(procid, num_servers, num_workers)
    return Task(procid, role, index, count, expand_nodelist(environ['SLURM_JOB_NODELIST'])[0], port,
                '%s.%s' % (job, step), _int_var(environ, 'SLURM_NODEID', '0'))


def _int_var(environ, name, default=None):
    value = environ.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise UserError('--launcher slurm: %s=%r is not a task number' % (name, value))
    return number
