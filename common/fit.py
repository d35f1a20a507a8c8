"""The training loop shared by train_model.py and train_imagenet.py.

The original recipe (TRAINING.md): Nesterov SGD with weight decay on every learnable
parameter, a multi-step learning rate stepped per batch, the original initialisation,
cross-entropy and accuracy (plus top-5 on ImageNet), data parallel over the given devices
and over the workers of a dist kvstore.
"""
import json
import logging
import random
import re
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

import network
from common import logs, runfiles
from common.devices import contexts_from_args
from common.dist import SUM_FIELDS, DistSync
from common.errors import UserError
from common.optim import OriginalNAG
from data.datasets import DATASETS


class NonFiniteLoss(UserError):
    pass


# ---------------------------------------------------------------- learning rate

def lr_step_updates(step_epochs, epoch_size):
    """Batch counts after which the learning rate drops (epochs -> updates)."""
    return [e * epoch_size for e in step_epochs if e > 0]


def lr_at(num_update, base_lr, factor, step_updates):
    """Learning rate of the batch that follows `num_update` finished batches."""
    drops = sum(1 for step in step_updates if num_update >= step)
    return base_lr * factor ** drops


# ---------------------------------------------------------------- set-up

def create_kvstore(name):
    if 'dist' in name:
        try:
            return mx.kv.create(name)
        except mx.base.MXNetError as err:
            raise UserError('cannot create kvstore %s (%s); start distributed runs with '
                            'tools/launch.py' % (name, str(err).splitlines()[0]))
    if name not in ('device', 'local'):
        raise UserError('--kv-store=%s is not one of device, local, dist_sync, '
                        'dist_device_sync' % name)
    return None


def build_net(args):
    """The network the flags name; an alias (dfn-mr) becomes its canonical name (cross)."""
    try:
        args.network = network.resolve_name(args.network)
        return network.get_net(args.network, num_classes=args.num_classes, depth=args.depth,
                               widen_factor=args.widen_factor)
    except ValueError as err:
        raise UserError(str(err))


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    mx.random.seed(seed % 2 ** 31)


class RunFiles:
    """The log, metrics and weights of one run; only rank 0 writes them.

    --resume continues the latest run in its own files: its latest checkpoint is the newest,
    so nothing is overwritten. --load-epoch N starts a new run from another run's
    checkpoint N: the other run's later checkpoints and log lines stay as they are, and the
    new log begins with a copy of its epochs before N, so it reads as one whole run.
    """

    def __init__(self, args, rank):
        self.rank = rank
        self.folder = runfiles.config_dir(args.log_dir, args.dataset, args.aug_type,
                                          args.network)
        self.stem = runfiles.config_stem(args.network, args.depth, args.widen_factor,
                                         args.exp_name)
        self.log_path = self.prefix = None
        self.source_prefix = args.model_prefix  # the checkpoint to start from
        self.source_log = None                  # --load-epoch: the log to copy epochs from
        self.start_epoch = 0
        if args.resume:
            self._find_latest()
        elif args.load_epoch is not None:
            self._find_prefix(args.load_epoch)

    def claim(self):
        """Create the log of a new run (rank 0); a resumed run appends to its own."""
        if self.log_path is None and self.rank == 0:
            self.log_path = runfiles.claim_log_path(self.folder, self.stem)
        if self.prefix is None and self.log_path is not None:
            self.prefix = runfiles.weights_prefix(self.log_path)

    def earlier_epoch_lines(self):
        """--load-epoch N: the source log's lines of epochs 0..N-1 (none without a log)."""
        if self.source_log is None:
            return []
        kept = []
        with open(self.source_log, errors='replace') as handle:
            for line in handle:
                match = re.search(r'(?:^|\s)Epoch\[(\d+)\]', line)
                if match and int(match.group(1)) < self.start_epoch:
                    kept.append(line)
        return kept

    def _find_latest(self):
        for log_path in reversed(runfiles.run_logs(self.folder, self.stem)):
            prefix = runfiles.weights_prefix(log_path)
            epochs = runfiles.checkpoint_epochs(prefix)
            if epochs:
                self.log_path, self.prefix, self.start_epoch = log_path, prefix, epochs[-1]
                self.source_prefix = prefix
                return
        if self.rank > 0:  # a distributed run: rank 0 may see checkpoints this one cannot
            raise UserError("--resume: worker %d sees no checkpoint of %s<run> in %s; rank "
                            "0's snapshot folder (--log-dir) must be on a file system every "
                            'machine shares' % (self.rank, self.stem, self.folder))
        raise UserError('--resume: no checkpoint of %s%s in %s; start a new run without '
                        '--resume' % (self.stem, '<run>', self.folder))

    def _find_prefix(self, epoch):
        if self.source_prefix is None:
            logs_found = runfiles.run_logs(self.folder, self.stem)
            if not logs_found:
                raise UserError('--load-epoch %d: no run of %s in %s; pass --model-prefix'
                                % (epoch, self.stem, self.folder))
            self.source_prefix = runfiles.weights_prefix(logs_found[-1])
        have = runfiles.checkpoint_epochs(self.source_prefix)
        if epoch not in have:
            raise UserError('--load-epoch %d: no checkpoint %s; saved epochs: %s' % (
                epoch, runfiles.params_file(self.source_prefix, epoch),
                ', '.join(map(str, have)) or 'none'))
        self.start_epoch = epoch
        self.source_log = runfiles.log_of_prefix(self.source_prefix)


def setup_logger(log_path, rank, num_workers):
    """Log lines as the original's, to the log file (rank 0) and to stderr."""
    logger = logging.getLogger('fusenet')
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter('%(asctime)s ' + logs.log_prefix(rank, num_workers)
                                  + '%(message)s')
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        handlers.append(logging.FileHandler(log_path, mode='a'))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


# ---------------------------------------------------------------- metrics

class EpochMeter:
    """Loss and accuracy sums kept on the devices; read only when a line is logged."""

    def __init__(self, top5):
        self.top5 = top5
        self.epoch = self._zero()
        self.window = self._zero()

    @staticmethod
    def _zero():
        return {'n': 0, 'loss': [], 'top1': [], 'top5': []}

    def add(self, losses, outputs, labels):
        for meter in (self.epoch, self.window):
            meter['n'] += sum(label.shape[0] for label in labels)
        for loss, out, label in zip(losses, outputs, labels):
            sums = {'loss': loss.sum(),
                    'top1': (out.argmax(axis=1) == label).sum()}
            if self.top5:
                sums['top5'] = (mx.nd.topk(out, k=5) == label.reshape((-1, 1))).sum()
            for key, value in sums.items():
                self.window[key].append(value)
                self.epoch[key].append(value)

    @staticmethod
    def _sums(meter):
        """The meter's sums as numbers; the device arrays collapse into one each."""
        sums = {'n': float(meter['n'])}
        for key in SUM_FIELDS[1:]:
            sums[key] = float(sum(v.asscalar() for v in meter[key]))
            meter[key] = [mx.nd.array([sums[key]])] if meter[key] else []
        return sums

    def read_window(self):
        values = means(self._sums(self.window), self.top5)
        self.window = self._zero()
        return values

    def read_epoch(self):
        return means(self._sums(self.epoch), self.top5)

    def epoch_sums(self):
        return self._sums(self.epoch)


def evaluate(net, val_it, contexts, batch_size, top5):
    """Sums of cross-entropy, top-1 and top-5 hits over every validation image once.

    A short last batch is padded to the full batch so the static graph keeps its shape;
    the padding rows are dropped before scoring.
    """
    sums = dict(n=0.0, loss=0.0, top1=0.0, top5=0.0)
    for data, label in val_it:
        n = data.shape[0]
        if n < batch_size:
            pad = mx.nd.zeros((batch_size - n,) + data.shape[1:], dtype=data.dtype)
            data = mx.nd.concat(data, pad, dim=0)
        parts = gluon.utils.split_and_load(data, contexts, even_split=False)
        logits = np.concatenate([_logits(net(x)).asnumpy() for x in parts])[:n]
        labels = label.asnumpy().astype(np.int64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        sums['loss'] += -log_prob[np.arange(n), labels].sum()
        sums['top1'] += (logits.argmax(axis=1) == labels).sum()
        if top5:
            best5 = np.argsort(-logits, axis=1)[:, :5]
            sums['top5'] += (best5 == labels[:, None]).any(axis=1).sum()
        sums['n'] += n
    return sums


def means(sums, top5):
    """Sums (over one worker or all) -> mean loss, accuracy and top-5 accuracy."""
    if sums['n'] == 0:
        raise UserError('no images to score: the record file or its part is empty')
    figures = {key: sums[key] / sums['n'] for key in ('loss', 'top1')}
    if top5:
        figures['top5'] = sums['top5'] / sums['n']
    return figures


def _logits(out):
    """One prediction per image; the ensemble's components are averaged."""
    if isinstance(out, (list, tuple)):
        return mx.nd.add_n(*out) / len(out)
    return out


# ---------------------------------------------------------------- the run

def train(args, top5=False):
    """Train as the flags say; return the last epoch's figures and where the files are."""
    try:
        return _train(args, top5)
    except NonFiniteLoss as err:
        logging.getLogger('fusenet').error('error: %s', err)
        raise


def _train(args, top5):
    net = build_net(args)  # first: a bad name or depth fails before any file is made
    kv = create_kvstore(args.kv_store)
    rank, num_workers = (kv.rank, kv.num_workers) if kv else (0, 1)
    notices = []
    contexts = contexts_from_args(args, log=notices.append)
    files = RunFiles(args, rank)
    resuming = files.start_epoch > 0
    if resuming:
        args.rand_seed = runfiles.read_state(files.source_prefix,
                                             files.start_epoch)['rand_seed']
    elif args.rand_seed is None:
        # Workers need not agree: dist kvstores give every worker rank 0's weights.
        args.rand_seed = random.SystemRandom().randrange(2 ** 31)
    from data.iterators import get_iterators  # imports the record reader only to train
    train_it, val_it = get_iterators(
        dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size,
        test_batch_size=args.test_batch_size, aug_type=args.aug_type,
        data_shape=args.data_shape, train_rec=args.train_dataset, val_rec=args.val_dataset,
        num_parts=num_workers, part_index=rank, seed=args.rand_seed,
        threads=args.data_threads, num_classes=args.num_classes)
    # Only now, with every input checked, does the run claim its log.
    files.claim()
    logger = setup_logger(files.log_path if rank == 0 else None, rank, num_workers)
    epoch_size = len(train_it)
    if rank == 0 and not args.resume:  # a new log: a new run, or --load-epoch
        for line in logs.head_lines(files.log_path, args):
            logger.info(line)
        if files.source_log is not None:
            with open(files.log_path, 'a') as handle:
                handle.writelines(files.earlier_epoch_lines())
    for notice in notices:
        logger.info(notice)
    if num_workers > 1:
        logger.info('worker %d of %d: training on part %d of %d, %d images; %d test images',
                    rank, num_workers, rank + 1, num_workers, train_it.num_examples,
                    val_it.num_examples)

    step_updates = lr_step_updates(args.lr_step_epochs, epoch_size)
    # dist: the gradients are summed by DistSync, the Trainer updates locally
    trainer_kv = None if kv is not None or len(contexts) == 1 else args.kv_store
    optimizer = OriginalNAG(learning_rate=args.lr, momentum=args.momentum, wd=args.wd)

    # A resumed run's weights come from the checkpoint; a new run draws them.
    seed_everything(args.rand_seed)
    net.initialize(mx.init.Zero() if resuming else network.original_initializer(),
                   ctx=contexts)
    _shape_pass(net, args, contexts)
    trainer = gluon.Trainer(net.collect_params(), optimizer, kvstore=trainer_kv,
                            update_on_kvstore=False)
    num_update = 0
    if resuming:
        meta = runfiles.load_checkpoint(files.source_prefix, files.start_epoch, net, trainer,
                                        contexts)
        num_update = meta['num_update']
        lr = lr_at(num_update, args.lr, args.lr_factor, step_updates)
        trainer.set_learning_rate(lr)
        logger.info('resuming from %s at epoch %d (batch %d), learning rate %g',
                    runfiles.params_file(files.source_prefix, files.start_epoch),
                    files.start_epoch, num_update, lr)
    sync = DistSync(kv, net, files.start_epoch) if kv is not None else None
    net.hybridize(static_alloc=True, static_shape=True)
    if rank == 0:
        learnable = sum(p.data(contexts[0]).size for p in net.collect_params().values()
                        if p.grad_req != 'null')
        logger.info('network parameters: %d on %s', learnable,
                    ', '.join(str(c) for c in contexts))

    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    global_batch = args.batch_size * num_workers
    show_bar = rank == 0 and not args.no_progress and sys.stderr.isatty()
    last_checkpoint = (runfiles.params_file(files.source_prefix, files.start_epoch)
                       if resuming else None)
    result = None
    for epoch in range(files.start_epoch, args.num_epochs):
        # Every random choice of an epoch derives from (seed, epoch): a resumed run sees
        # exactly what an uninterrupted one would.
        seed_everything(args.rand_seed * 1000003 + epoch)
        train_it.set_epoch(epoch)
        val_it.set_epoch(epoch)
        meter = EpochMeter(top5)
        tic = window_tic = time.time()
        bar = _progress(show_bar, epoch_size, epoch)
        for batch, (data, label) in enumerate(train_it, start=1):
            lr = lr_at(num_update, args.lr, args.lr_factor, step_updates)
            if lr != trainer.learning_rate:
                logger.info('Epoch[%d] learning rate %g from batch %d (batch %d of the epoch)',
                            epoch, lr, num_update, batch - 1)
                trainer.set_learning_rate(lr)
            xs = gluon.utils.split_and_load(data, contexts)
            ys = gluon.utils.split_and_load(label, contexts)
            with autograd.record():
                outs = [net(x) for x in xs]
                losses = [_loss(loss_fn, out, y) for out, y in zip(outs, ys)]
            autograd.backward(losses)
            if sync is not None:
                sync.allreduce_grads()
                trainer.update(global_batch)
            else:
                trainer.step(global_batch)
            num_update += 1
            meter.add(losses, [_logits(o) for o in outs], ys)
            if bar is not None:
                bar.update(1)
            if batch % args.log_iters == 0:
                speed = args.log_iters * args.batch_size / (time.time() - window_tic)
                window, running = meter.read_window(), meter.read_epoch()
                _check_finite(window['loss'], epoch, batch, last_checkpoint, files)
                logger.info(logs.batch_line(
                    epoch, batch, speed, window['loss'], running['loss'],
                    100 * window['top1'], 100 * running['top1'],
                    *((100 * window['top5'], 100 * running['top5']) if top5 else ())))
                window_tic = time.time()
        if bar is not None:
            bar.close()
        time_cost = time.time() - tic
        train_sums = meter.epoch_sums()
        val_sums = evaluate(net, val_it, contexts, args.test_batch_size, top5)
        if sync is not None:  # figures over every worker's images
            train_sums = sync.sum_metrics(sync.train_key, train_sums)
            val_sums = sync.sum_metrics(sync.val_key, val_sums)
        train_figures, val = means(train_sums, top5), means(val_sums, top5)
        _check_finite(train_figures['loss'], epoch, epoch_size, last_checkpoint, files)
        for line in logs.epoch_lines(epoch, train_figures['top1'], train_figures['loss'],
                                     time_cost, val['loss'], val['top1'], val.get('top5')):
            logger.info(line)
        if num_workers > 1:
            # Workers that stay in step hold identical weights: the same checksum.
            logger.info('Epoch[%d] parameter checksum %.17g', epoch, _checksum(net, contexts))
        result = dict(epoch=epoch, train_loss=train_figures['loss'],
                      train_acc=train_figures['top1'], time_cost=time_cost,
                      val_loss=val['loss'], val_acc=val['top1'], val_top5=val.get('top5'),
                      lr=lr_at(num_update - 1, args.lr, args.lr_factor, step_updates))
        if rank == 0:
            with open(runfiles.metrics_path(files.log_path), 'a') as handle:
                handle.write(json.dumps(result) + '\n')
            done = epoch + 1
            if done % args.checkpoint_epochs == 0 or done == args.num_epochs:
                runfiles.save_checkpoint(files.prefix, done, net, trainer,
                                         dict(num_update=num_update,
                                              rand_seed=args.rand_seed,
                                              args=vars(args)))
                last_checkpoint = runfiles.params_file(files.prefix, done)
                logger.info('Saved checkpoint to "%s"', last_checkpoint)
    if result is None:
        logger.info('nothing to do: the run already has %d of %d epochs',
                    files.start_epoch, args.num_epochs)
    return dict(result or {}, log_path=files.log_path, weights_prefix=files.prefix)


def _checksum(net, contexts):
    return float(sum(np.abs(p.data(contexts[0]).asnumpy()).astype(np.float64).sum()
                     for p in net.collect_params().values() if p.grad_req != 'null'))


def _loss(loss_fn, out, label):
    if isinstance(out, (list, tuple)):  # ensemble: every component learns
        return mx.nd.add_n(*[loss_fn(o, label) for o in out]) / len(out)
    return loss_fn(out, label)


def _shape_pass(net, args, contexts):
    """Give deferred-initialised parameters their shapes (one inference on zeros)."""
    channels = DATASETS[args.dataset]['channels']
    for ctx in contexts:
        net(mx.nd.zeros((1, channels, args.data_shape, args.data_shape), ctx=ctx))


def _check_finite(loss, epoch, batch, last_checkpoint, files):
    if np.isfinite(loss):
        return
    where = ('the last good checkpoint is %s' % last_checkpoint if last_checkpoint
             else 'no checkpoint was saved yet')
    raise NonFiniteLoss('the training loss became %s in epoch %d by batch %d; stopped, %s; '
                        'try a lower --lr' % (loss, epoch, batch, where))


def _progress(show, total, epoch):
    if not show:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc='epoch %d' % epoch, leave=False, unit='batch')
