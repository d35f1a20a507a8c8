"""The training log format: the one place that writes its lines and reads them back.

A log line is `<asctime> [Node[k] ]<message>` (LOG_FORMAT, plus the rank prefix of a
distributed worker). The messages are those of the 2016 code (docs/training.md):

    <log path>
    start with arguments Namespace(...)
    Epoch[0] Batch [50]	Speed: 1234.56	loss: 2.1034(2.1034)	top1: 21.5625(21.5625)
    Epoch[0] Train-accuracy=0.412345
    Epoch[0] Train-cross-entropy=1.234567        (this port only)
    Epoch[0] Time cost=61.234
    Epoch[0] Validation-cross-entropy=1.234567
    Epoch[0] Validation-accuracy=0.567890

The engine builds its messages with the formatters below and writes every finished epoch
also to `<log name>.metrics.jsonl` (one JSON object per line); parse_log() reads a run of
this port from that file and a 2016 log from its lines.
"""
import ast
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from common.atomic import nofollow_opener, open_append
from common.errors import UserError
from common.reading import open_regular, regular_opener
from engine import runfiles
from engine.checkpoint import WriteFailed

LOG_FORMAT = '%(asctime)s %(message)s'
LOGGER_NAME = 'fusenet'


# ---------------------------------------------------------------- writing

def log_prefix(rank, num_workers):
    """`Node[k] ` for a distributed worker, so that interleaved output stays attributable."""
    return 'Node[%d] ' % rank if num_workers > 1 else ''


def setup_logger(log_path, rank, num_workers, hold=False):
    """Log lines in LOG_FORMAT, to the log file (rank 0) and to stderr.

    hold: the run has no log yet (it claims one only once its checkpoint has loaded): the
    lines wait until attach_log_file(), so that nothing of a failed start reads as a run
    and a failed start prints its one error line alone.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    prefix = log_prefix(rank, num_workers)
    formatter = logging.Formatter(LOG_FORMAT.replace('%(message)s', prefix + '%(message)s'))
    if hold:
        handlers = [_HeldLines()]
    else:
        handlers = [logging.StreamHandler(sys.stderr)]
        if log_path is not None:
            handlers.append(_RunLogHandler(log_path))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


class _RunLogHandler(logging.FileHandler):
    """The log file. A line that cannot be written (a full disk) stops the run: logging's
    own handleError would print `--- Logging error ---` and carry on without a log."""

    def __init__(self, path):
        try:
            super().__init__(path, mode='a')
        except OSError as err:
            raise WriteFailed(path, err)

    def _open(self):
        """The log, never a link planted in its place (common/atomic.py)."""
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=nofollow_opener)

    def handleError(self, record):
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            raise WriteFailed(self.baseFilename, err)
        super().handleError(record)

    def close(self):
        try:
            super().close()
        except OSError:   # unwritten lines of a full disk: the run already stopped on them
            pass


class _HeldLines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def attach_log_file(logger, log_path):
    """Start writing the lines to stderr and the run's (now claimed) log; the lines held
    so far wait for write_held_lines(), after the head."""
    for held in [h for h in logger.handlers if isinstance(h, _HeldLines)]:
        logger.removeHandler(held)
        for handler in (logging.StreamHandler(sys.stderr), _RunLogHandler(log_path)):
            handler.setFormatter(held.formatter)
            handler.held = held.records
            logger.addHandler(handler)


def write_held_lines(logger):
    for handler in logger.handlers:
        records, handler.held = getattr(handler, 'held', []), []
        for record in records:
            handler.handle(record)


def close_log_file(logger):
    """Stop writing to the log file (after a failed write; the stderr lines go on)."""
    for handler in list(logger.handlers):
        if isinstance(handler, (_RunLogHandler, _HeldLines)):
            logger.removeHandler(handler)
            handler.close()


def batch_line(epoch, batch, speed, loss, loss_avg, top1, top1_avg, top5=None, top5_avg=None):
    """A progress line: value of the last window, running mean over the epoch in brackets.

    top1 and top5 are percentages, as in the original.
    """
    line = 'Epoch[%d] Batch [%d]\tSpeed: %.2f\tloss: %.4f(%.4f)\ttop1: %.4f(%.4f)' % (
        epoch, batch, speed, loss, loss_avg, top1, top1_avg)
    if top5 is not None:
        line += '\ttop5: %.4f(%.4f)' % (top5, top5_avg)
    return line


def epoch_lines(epoch, train_acc, train_loss, time_cost, val_loss, val_acc, val_top5=None):
    """The end-of-epoch lines; accuracies are fractions; train_loss None omits its line."""
    lines = ['Epoch[%d] Train-accuracy=%f' % (epoch, train_acc)]
    if train_loss is not None:
        lines.append('Epoch[%d] Train-cross-entropy=%f' % (epoch, train_loss))
    lines += ['Epoch[%d] Time cost=%.3f' % (epoch, time_cost),
              'Epoch[%d] Validation-cross-entropy=%f' % (epoch, val_loss),
              'Epoch[%d] Validation-accuracy=%f' % (epoch, val_acc)]
    if val_top5 is not None:
        lines.append('Epoch[%d] Validation-top_k_accuracy_5=%f' % (epoch, val_top5))
    return lines


def average_lines(epoch, val_loss, val_acc, val_top5=None):
    """--ema: the test figures of the averaged weights, named so that they never read as
    (or grep as) the Validation-accuracy of the trained weights."""
    lines = ['Epoch[%d] Validation-ema-cross-entropy=%f' % (epoch, val_loss),
             'Epoch[%d] Validation-ema-accuracy=%f' % (epoch, val_acc)]
    if val_top5 is not None:
        lines.append('Epoch[%d] Validation-ema-top_k_accuracy_5=%f' % (epoch, val_top5))
    return lines


def head_lines(log_path, args_namespace):
    """The first two messages of a log: its own path and the arguments."""
    return [str(log_path), 'start with arguments %s' % (args_namespace,)]


def append_metrics(path, figures):
    """One finished epoch's figures as one JSON line of the metrics file.

    After a line cut short (a full disk, then --resume) the new line starts on a line of
    its own: glued to the cut one, the resumed epoch's figures would be unreadable too.
    """
    try:
        with open_append(path, 'ab+') as handle:
            cut = handle.seek(0, os.SEEK_END) > 0 and _last_byte(handle) != b'\n'
            handle.write((('\n' if cut else '') + json.dumps(figures) + '\n').encode())
    except OSError as err:
        raise WriteFailed(path, err)


def _last_byte(handle):
    handle.seek(-1, os.SEEK_END)
    return handle.read(1)


# ---------------------------------------------------------------- reading

def epoch_of_line(line):
    """The epoch a log line is about, or None for a head or other line."""
    match = _LINE.match(line.rstrip('\r\n'))
    epoch = _EPOCH_NUMBER.match(match.group('msg'))
    return int(epoch.group(1)) if epoch else None


def lines_before_epoch(path, epoch, of_metrics=False):
    """The lines of a log (or of a metrics file) about epochs 0..epoch-1, as they are."""
    kept = []
    with open_regular(path, 'r', errors='replace') as handle:
        for line in handle:
            if of_metrics:
                found = _metrics_epoch(line)
            else:
                found = epoch_of_line(line)
            if found is not None and found < epoch:
                kept.append(line)
    return kept


def _metrics_epoch(line):
    try:
        return int(json.loads(line)['epoch'])
    except (ValueError, KeyError, TypeError):
        return None


def read_metrics(path):
    """The EpochRecords of a metrics file, by epoch; a line cut short (a crash) is skipped.

    A resumed run appends the epochs after its checkpoint again: the later line wins.
    """
    by_epoch = {}
    names = EpochRecord.__dataclass_fields__
    with open_regular(path, 'r', errors='replace') as handle:
        for line in handle:
            try:
                figures = json.loads(line)
            except ValueError:
                continue
            if _is_epoch_figures(figures):
                record = EpochRecord(**{k: v for k, v in figures.items() if k in names})
                by_epoch[record.epoch] = record
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def _is_epoch_figures(figures):
    """A metrics line a reader can trust: an integer epoch, a test accuracy, and numbers
    (or nothing) for every figure; an edited or foreign line is skipped like a cut one."""
    if not isinstance(figures, dict) or figures.get('val_acc') is None:
        return False
    if not _is_number(figures.get('epoch'), int):
        return False
    return all(value is None or _is_number(value, (int, float))
               for name, value in figures.items() if name in _FIGURES)


def _is_number(value, kinds):
    return isinstance(value, kinds) and not isinstance(value, bool)


@dataclass
class EpochRecord:
    """One finished epoch (one with a validation accuracy). Accuracies are fractions."""
    epoch: int
    train_acc: Optional[float] = None
    train_loss: Optional[float] = None
    time_cost: Optional[float] = None
    val_loss: Optional[float] = None
    val_acc: Optional[float] = None
    val_top5: Optional[float] = None


_FIGURES = [name for name in EpochRecord.__dataclass_fields__ if name != 'epoch']


@dataclass
class Run:
    path: str
    config: str            # the log name without the run number, e.g. cross_d56w1_exp
    run_number: Optional[int]
    dataset: str           # the folder two levels up, e.g. cifar10 or cifar10_noaug
    network: str           # the folder the log sits in
    head: List[str] = field(default_factory=list)
    args: Dict[str, object] = field(default_factory=dict)
    records: List[EpochRecord] = field(default_factory=list)
    unparseable_lines: int = 0
    first_unparseable: Optional[int] = None   # 1-based line number, for the message
    nodes: List[int] = field(default_factory=list)   # ranks seen in Node[k] prefixes

    @property
    def num_epochs(self):
        value = self.args.get('num_epochs')
        return value if isinstance(value, int) else None

    @property
    def epochs_done(self):
        """Distinct validated epochs (within --num-epochs when known), never lines."""
        return len([record for record in self.records
                    if self.num_epochs is None or record.epoch < self.num_epochs])

    @property
    def complete(self):
        """All epochs validated. Unknown num_epochs counts as complete (see epochs_known)."""
        if not self.records:
            return False
        return self.num_epochs is None or self.epochs_done >= self.num_epochs

    @property
    def epochs_known(self):
        return self.num_epochs is not None

    @property
    def is_log(self):
        """False for a text file that is no training log at all."""
        return bool(self.records) or any(line.startswith('start with arguments')
                                         for line in self.head)

    @property
    def final(self):
        return self.records[-1] if self.records else None

    def int_arg(self, name, fallback_pattern):
        """An integer argument, else read from the file name (depth, widen factor)."""
        value = self.args.get(name)
        if isinstance(value, int):
            return value
        match = re.search(fallback_pattern, os.path.basename(self.path))
        return int(match.group(1)) if match else None

    @property
    def depth(self):
        return self.int_arg('depth', r'_d(\d+)w\d+')

    @property
    def widen_factor(self):
        return self.int_arg('widen_factor', r'_d\d+w(\d+)')


# `2016-11-25 11:21:06,123 ` then an optional `INFO:root:` (MXNet's default format, in case
# a log was captured from the console) and an optional `Node[k] `.
_LINE = re.compile(r'^(?P<time>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?\s+)?'
                   r'(?:(?:INFO|WARNING|DEBUG|ERROR):root:)?'
                   r'(?:Node\[(?P<node>\d+)\]\s+)?(?P<msg>.*)$')
_BATCH = re.compile(r'^Epoch\[(\d+)\] Batch \[(\d+)\]\s+Speed: (\S+)')
_BATCH_FIELD = re.compile(r'(\w+): ([^\s(]+)\(([^\s)]+)\)')
_METRIC = re.compile(r'^Epoch\[(\d+)\] (Train|Validation)-([\w-]+)=(\S+)(?:\s.*)?$')
_TIME = re.compile(r'^Epoch\[(\d+)\] Time cost=(\S+)(?:\s.*)?$')
_EPOCH_ANY = re.compile(r'^Epoch\[')
_EPOCH_NUMBER = re.compile(r'^Epoch\[(\d+)\]')
_EPOCH_OTHER = re.compile(r'^Epoch\[\d+\] (.*)$')
_KNOWN_KINDS = ('Batch [', 'Train-', 'Validation-', 'Time cost=')
_RUN_NUMBER = re.compile(r'^(.*?)(\d+)$')   # 2016 logs without their arguments

# metric name in the log -> EpochRecord field
_METRIC_FIELDS = {
    ('Train', 'accuracy'): 'train_acc',
    ('Train', 'cross-entropy'): 'train_loss',
    ('Validation', 'cross-entropy'): 'val_loss',
    ('Validation', 'accuracy'): 'val_acc',
    ('Validation', 'top_k_accuracy_5'): 'val_top5',
}


class _EpochAccumulator:
    """What one node logged about one epoch."""

    def __init__(self):
        self.metrics = {}
        self.time_cost = None
        self.last_batch = {}   # field -> running mean of the last batch line

    def record(self, epoch):
        metrics = self.metrics
        # The 2016 callback reset the training metric at every batch line, so its
        # Train-accuracy covers only the batches after the last line; the original
        # get_results read the running mean of the `Batch [750]` line instead. This port
        # writes Train-cross-entropy and a whole-epoch Train-accuracy: trust those.
        if 'train_loss' in metrics or 'top1' not in self.last_batch:
            train_acc = metrics.get('train_acc')
        else:
            train_acc = self.last_batch['top1'] / 100.0
        train_loss = metrics.get('train_loss', self.last_batch.get('loss'))
        return EpochRecord(epoch=epoch, train_acc=train_acc, train_loss=train_loss,
                           time_cost=self.time_cost, val_loss=metrics.get('val_loss'),
                           val_acc=metrics.get('val_acc'), val_top5=metrics.get('val_top5'))


def _parse_epoch_message(msg, epochs):
    """Fold one `Epoch[...]` message into epochs (epoch -> accumulator); False if malformed."""
    try:
        match = _BATCH.match(msg)
        if match:
            epoch = int(match.group(1))
            float(match.group(3))
            fields = {name: float(mean) for name, _, mean in _BATCH_FIELD.findall(msg)}
            epochs.setdefault(epoch, _EpochAccumulator()).last_batch = fields
            return True
        match = _METRIC.match(msg)
        if match:
            epoch, side, name, value = match.groups()
            value = float(value)
            target = _METRIC_FIELDS.get((side, name))
            if target:   # other metrics are valid lines this report does not use
                epochs.setdefault(int(epoch), _EpochAccumulator()).metrics[target] = value
            return True
        match = _TIME.match(msg)
        if match:
            epochs.setdefault(int(match.group(1)), _EpochAccumulator()).time_cost = \
                float(match.group(2))
            return True
    except ValueError:
        return False
    return False


def _is_other_epoch_message(msg):
    """MXNet's own `Epoch[3] Resetting Data Iterator`: fine; a known kind cut short: not."""
    match = _EPOCH_OTHER.match(msg)
    if not match:
        return False
    rest = match.group(1)
    return not any(kind.startswith(rest) or rest.startswith(kind) for kind in _KNOWN_KINDS)


def parse_log(path):
    """Read one log into a Run. Lines it cannot read are counted, never fatal.

    A line counts as unparseable when it is an epoch line of a known kind (batch, Train-,
    Validation-, Time cost) but malformed (a truncated last line, a bad number), or when,
    after the head, it carries neither a timestamp nor a known message. Timestamped
    messages of other kinds (checkpoints, learning-rate changes, `Epoch[3] Resetting Data
    Iterator`) are fine and ignored. The epochs of this port's runs come from the metrics
    file beside the log; those of a 2016 log from its lines (where several nodes logged into
    one file, from the lowest rank's).
    """
    folder = os.path.dirname(os.path.abspath(path))
    network = os.path.basename(folder)
    dataset = os.path.basename(os.path.dirname(folder))
    head, bad, first_bad = [], 0, None
    per_node = {}   # rank -> epoch -> _EpochAccumulator
    in_head = True
    # a regular file only: a FIFO would block the reader
    with open(path, encoding='utf-8', errors='replace', opener=regular_opener()) as stream:
        for number, raw in enumerate(stream, 1):
            line = raw.rstrip('\r\n')
            if not line.strip():
                continue
            match = _LINE.match(line)
            msg = match.group('msg').rstrip()
            node = int(match.group('node') or 0)
            if _EPOCH_ANY.match(msg):
                in_head = False
                if _parse_epoch_message(msg, per_node.setdefault(node, {})):
                    continue
                if match.group('time') and _is_other_epoch_message(msg):
                    continue
            elif in_head or match.group('time'):
                # the head includes untimed continuation lines of multi-line messages
                if in_head:
                    head.append(msg)
                continue
            bad += 1
            first_bad = first_bad or number
    args = args_of_head(head)
    config, run_number = _split_run_number(os.path.splitext(os.path.basename(path))[0], args)
    metrics = runfiles.metrics_path(path)
    # this port's run: the figures as computed, not as printed (a regular file only: a
    # FIFO of that name would block the reader)
    if os.path.isfile(metrics):
        records = read_metrics(metrics)
    else:                         # a 2016 log: its lines are all there is
        records = _records_from_lines(per_node)
    return Run(path=str(path), config=config, run_number=run_number, dataset=dataset,
               network=network, head=head, args=args, records=records,
               unparseable_lines=bad, first_unparseable=first_bad,
               nodes=sorted(rank for rank in per_node if per_node[rank]))


def args_of_head(head):
    """The flags a log's head gives: its `start with arguments` line, updated by what this
    port's engine settled (`run settings`: the canonical network name, the seed)."""
    args = parse_namespace(next((h for h in head if h.startswith('start with arguments')), ''))
    args.update(parse_namespace(next((h for h in head if h.startswith('run settings')), '')))
    return args


HEAD_LIMIT = 65536   # bytes: a head is a few lines; a 2016 head's Namespace spans several


def read_head_args(path):
    """args_of_head of the log at `path`, read no further than its first epoch line or
    HEAD_LIMIT bytes; {} when it cannot be read or has no head yet."""
    head = []
    try:
        with open_regular(path) as handle:
            text = handle.read(HEAD_LIMIT).decode('utf-8', 'replace')
    except (OSError, UserError):
        return {}
    for line in text.splitlines():
        msg = _LINE.match(line).group('msg').rstrip()
        if _EPOCH_ANY.match(msg):
            break
        head.append(msg)
    return args_of_head(head)


def _records_from_lines(per_node):
    """The validated epochs of the lowest rank that logged any."""
    validated = {rank: {e: acc for e, acc in epochs.items() if 'val_acc' in acc.metrics}
                 for rank, epochs in per_node.items()}
    ranks = sorted(rank for rank, epochs in validated.items() if epochs)
    if not ranks:
        return []
    return [acc.record(epoch) for epoch, acc in sorted(validated[ranks[0]].items())]


def _split_run_number(name, args):
    """`cross_d56w1_exp3` -> (`cross_d56w1_exp`, 3).

    The arguments say where the name ends, which matters for an exp-name that ends in a
    digit (`seed7` + run 1 = `seed71`); without them the trailing digits are the run number.
    """
    try:
        stem = runfiles.config_stem(args['network'], args['depth'], args['widen_factor'],
                                    args.get('exp_name'))
        run = runfiles.split_run_number(name, stem)
        if run is not None:
            return stem, run
    except (KeyError, TypeError):
        pass
    match = _RUN_NUMBER.match(name)
    if match and match.group(1):
        return match.group(1), int(match.group(2))
    return name, None


# ---------------------------------------------------------------- the arguments line

def parse_namespace(text):
    """The fields of `... Namespace(a=1, b='x', ...)` as a dict.

    Values that are Python literals (also Python 2's `u'x'` and `5L`) become Python
    objects, anything else (an NDArray, a function) stays a string; a repr cut short (a
    multi-line value) yields the fields before the cut.
    """
    start = text.find('Namespace(')
    if start < 0:
        return {}
    body = text[start + len('Namespace('):]
    fields = {}
    for item in _split_top_level(body):
        name, sep, value = item.partition('=')
        name = name.strip()
        if sep and name.isidentifier():
            fields[name] = _literal(value.strip())
    return fields


def _split_top_level(body):
    """Split at the commas outside brackets and quotes; stop at the closing parenthesis."""
    items, depth, quote, current = [], 0, None, []
    chars = iter(body)
    for char in chars:
        if quote:
            current.append(char)
            if char == '\\':
                current.append(next(chars, ''))
            elif char == quote:
                quote = None
            continue
        if char in '\'"':
            quote = char
        elif char in '([{':
            depth += 1
        elif char in ')]}':
            if depth == 0:
                items.append(''.join(current))
                return items
            depth -= 1
        elif char == ',' and depth == 0:
            items.append(''.join(current))
            current = []
            continue
        current.append(char)
    return items   # no closing parenthesis: the last item may be cut, leave it out


def _literal(value):
    value = re.sub(r'(?<![\w.])(-?\d+)[lL]\b', r'\1', value)   # Python 2 longs
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value
