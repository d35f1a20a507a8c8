"""The training engine shared by train_model.py and train_imagenet.py.

    result = fit.train(args, name, net, data_loader, input_shape, top5)

The scripts parse the flags, build the network and say how to make the iterators
(`data_loader(args, seed, num_parts, part_index) -> (train_it, val_it)`, called once the
seed and the worker are known); the engine runs the original recipe (docs/training.md):
Nesterov SGD with weight decay on every learnable parameter, a multi-step learning rate
stepped per batch, the original initialisation, cross-entropy and accuracy (plus top-5 on
ImageNet), data parallel over the given devices and over the workers of a dist kvstore.
The opt-in recipe options (engine/recipe_flags.py: cosine rate, warm-up, label smoothing,
mixup, cutmix, no decay on BatchNorm and biases, gradient clipping, an average of the
weights, a best checkpoint, TensorBoard) are all off by default, and off, the engine takes
the original code paths.

As timm's train.py: setup() once, then per epoch train_one_epoch() (returns its figures)
and end_of_epoch() (evaluate, log, metrics, checkpoint).
"""
import argparse
import logging
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, List, Optional

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

import network
from common.atomic import open_append
from common.errors import UserError
from engine import checkpoint, logs, recipe, recipe_flags, runfiles, tensorboard
from engine.best import BestCheckpoint
from engine.devices import contexts_from_args
from engine.dist import DistSync
from engine.ema import WeightAverage
from engine.evaluate import evaluate
from engine.loss import training_loss
from engine.meter import EpochMeter, means
from engine.optim import OriginalNAG
from engine.schedule import StepSchedule, epoch_size, make_schedule
from network import onednn


class NonFiniteLoss(UserError):
    pass


@dataclass
class RunConfig:
    """What the engine settled that the flags left open; the flags stay as they were given
    (the checkpoint saves both)."""
    network: str     # the canonical name (an alias such as dfn-mr resolved)
    rand_seed: int   # the seed given, drawn, or (continuing) the checkpoint's

    def line(self):
        return 'run settings %s' % (argparse.Namespace(**asdict(self)),)


@dataclass
class Session:
    """Everything the epochs of one run share."""
    args: Any
    run: RunConfig
    net: Any
    trainer: Any
    contexts: List[Any]
    files: runfiles.RunFiles
    logger: logging.Logger
    train_it: Any
    val_it: Any
    schedule: StepSchedule
    top5: bool
    rank: int = 0
    num_workers: int = 1
    sync: Optional[DistSync] = None
    num_update: int = 0
    last_checkpoint: Optional[str] = None
    mixer: Optional[recipe.BatchMixer] = None   # recipe options, all None by default
    best: Optional[BestCheckpoint] = None
    board: Any = None
    ema: Optional[WeightAverage] = None


def train(args, name, net, data_loader, input_shape, top5=False):
    """Train `net`, the network called `name` (canonical: it names the run's files), as the
    flags say; return the last epoch's figures and where the files are."""
    session = setup(args, name, net, data_loader, input_shape, top5)
    try:
        result = None
        for epoch in range(session.files.start_epoch, args.num_epochs):
            figures = train_one_epoch(session, epoch)
            result = end_of_epoch(session, epoch, figures)
    except NonFiniteLoss as err:
        logging.getLogger(logs.LOGGER_NAME).error('error: %s', err)
        raise
    except checkpoint.WriteFailed as err:
        raise _stopped(session.logger, err, session.last_checkpoint)
    finally:
        if session.board is not None:
            session.board.close()
        logs.close_log_file(session.logger)
        session.files.release()
    return dict(result or {}, log_path=session.files.log_path,
                weights_prefix=session.files.prefix)


def _stopped(logger, err, last_checkpoint):
    """A failed write: no more log lines (the disk is full); one line saying what is safe."""
    logs.close_log_file(logger)
    return UserError('%s; stopped, %s' % (err, _last_good(last_checkpoint)))


def _last_good(last_checkpoint):
    if last_checkpoint:
        return 'the last good checkpoint is %s' % last_checkpoint
    return 'no checkpoint was saved yet'


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


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    mx.random.seed(seed % 2 ** 31)


def setup(args, canonical, net, data_loader, input_shape, top5):
    """Files, logger, iterators, initialised (or restored) network and trainer."""
    recipe_flags.check_args(args)
    kv = create_kvstore(args.kv_store)
    rank, num_workers = (kv.rank, kv.num_workers) if kv else (0, 1)
    # rank 0's lines wait for its log, claimed only once everything has loaded
    logger = logs.setup_logger(None, rank, num_workers, hold=rank == 0)
    contexts = contexts_from_args(args, log=logger.info)
    files = runfiles.RunFiles(
        runfiles.config_dir(args.log_dir, args.dataset, args.aug_type, canonical),
        runfiles.config_stem(canonical, args.depth, args.widen_factor, args.exp_name),
        rank, resume=args.resume, load_epoch=args.load_epoch, model_prefix=args.model_prefix)
    session = None
    try:
        files.check_continuation(args)
        files.lock()   # --resume: its run, before anything is read from it
        run = RunConfig(network=canonical, rand_seed=_seed_of(args, files))
        train_it, val_it = data_loader(args, seed=run.rand_seed, num_parts=num_workers,
                                       part_index=rank)
        if num_workers > 1:
            logger.info('worker %d of %d: training on part %d of %d, %d images; %d test '
                        'images', rank, num_workers, rank + 1, num_workers,
                        train_it.num_examples, val_it.num_examples)
        schedule = schedule_of(args, num_workers)
        if not isinstance(schedule, StepSchedule):
            logger.info(schedule.describe())
        if args.tensorboard is not None:
            tensorboard.summary_writer_class()  # missing: an error before any file is written
        # a resumed run's best checkpoint is read (and checked) before anything is written
        best = BestCheckpoint(files.prefix, logger) if args.save_best and files.prefix \
            and rank == 0 else None
        session = Session(args=args, run=run, net=net, trainer=None, contexts=contexts,
                          files=files, logger=logger, train_it=train_it, val_it=val_it,
                          schedule=schedule, top5=top5, rank=rank, num_workers=num_workers,
                          mixer=recipe.make_mixer(args), best=best)
        _prepare_net(session, kv, input_shape)
        # the last refusals before the log is claimed: a run refused here leaves nothing
        if args.tensorboard is not None and rank == 0:
            session.board = tensorboard.ScalarWriter(args.tensorboard)
        _open_log(session)
        if args.save_best and rank == 0 and session.best is None:
            session.best = BestCheckpoint(files.prefix, logger)   # a new run: none yet
    except BaseException as err:
        if session is not None and session.board is not None:
            session.board.discard()
        files.abandon()
        files.release()
        if isinstance(err, checkpoint.WriteFailed):
            raise _stopped(logger, err, session_checkpoint(files))
        logs.close_log_file(logger)
        raise
    return session


def schedule_of(args, num_workers):
    """The learning rate of every batch: steps after floor(N / (B * workers)) batches per
    epoch (N = --num-examples): on one machine as the original counted them; with several
    workers as MXNet's examples and the original's train_imagenet.py did (its CIFAR script
    did not divide by the workers)."""
    if args.num_examples is None:
        raise UserError('--num-examples is unknown: pass the number of training images')
    return make_schedule(args, epoch_size(args.num_examples, args.batch_size, num_workers))


def session_checkpoint(files):
    """The checkpoint a run starts from, if any: its last good one until it saves another."""
    return checkpoint.params_file(files.source_prefix, files.start_epoch) \
        if files.resuming else None


def _open_log(session):
    """Only now, with the checkpoint loaded, does a new run claim its log (and lock it)."""
    files, logger = session.files, session.logger
    files.claim()
    if session.rank != 0:
        return
    logs.attach_log_file(logger, files.log_path)
    if not session.args.resume:  # a new log: a new run, or --load-epoch
        _start_log(logger, files, session.args, session.run)
    logs.write_held_lines(logger)
    if files.run_lock.previous_owner:
        logger.info('took over the lock of process %d, which is no longer running',
                    files.run_lock.previous_owner)


def _seed_of(args, files):
    if files.resuming:
        return files.state['rand_seed']
    if args.rand_seed is None:
        # Workers need not agree: dist kvstores give every worker rank 0's weights.
        return random.SystemRandom().randrange(2 ** 31)
    return args.rand_seed


def _start_log(logger, files, args, run):
    """The head of a new log; --load-epoch: then the source's earlier epochs, in the log
    and in the metrics file alike."""
    for line in logs.head_lines(files.log_path, args) + [run.line()]:
        logger.info(line)
    if files.source_log is None:
        return
    copies = [(files.source_log, files.log_path, False)]
    source_metrics = runfiles.metrics_path(files.source_log)
    if os.path.exists(source_metrics):
        copies.append((source_metrics, files.metrics_path, True))
    for source, target, of_metrics in copies:
        lines = logs.lines_before_epoch(source, files.start_epoch, of_metrics=of_metrics)
        try:
            with open_append(target) as handle:
                handle.writelines(lines)
        except OSError as err:
            raise checkpoint.WriteFailed(target, err)


def _prepare_net(session, kv, input_shape):
    """Initialise (a new run) or restore (a continued one) the weights; make the trainer."""
    args, net, contexts, files = session.args, session.net, session.contexts, session.files
    # dist: the gradients are summed by DistSync, the Trainer updates locally
    trainer_kv = None if kv is not None or len(contexts) == 1 else args.kv_store
    optimizer = OriginalNAG(learning_rate=args.lr, momentum=args.momentum, wd=args.wd,
                            clip_gradient=args.clip_gradient)
    # A resumed run's weights come from the checkpoint; a new run draws them.
    seed_everything(session.run.rand_seed)
    onednn.fuse_where_available(net, contexts)   # the same numbers, faster on the CPU
    network.initialize(net, input_shape, ctx=contexts,
                       init=mx.init.Zero() if files.resuming else None)
    if args.no_wd_bn:
        recipe.exclude_from_weight_decay(net)
    session.trainer = gluon.Trainer(net.collect_params(), optimizer, kvstore=trainer_kv,
                                    update_on_kvstore=False)
    if files.resuming:
        _restore(session)
    session.sync = DistSync(kv, net, files.start_epoch) if kv is not None else None
    if args.ema:   # from the weights every worker starts with
        session.ema = _weight_average(session)
    net.hybridize(static_alloc=True, static_shape=True)
    if session.rank == 0:
        learnable = sum(p.data(contexts[0]).size for p in net.collect_params().values()
                        if p.grad_req != 'null')
        session.logger.info('network parameters: %d on %s', learnable,
                            ', '.join(str(c) for c in contexts))


def _weight_average(session):
    """--ema: the average of a new run starts at its first weights; a continued run's is
    the checkpoint's (--resume needs it; --load-epoch of a run without --ema starts one)."""
    ema = WeightAverage(session.net, session.args.ema, session.contexts[0])
    files = session.files
    if not files.resuming:
        return ema
    saved = checkpoint.load_averages(files.source_prefix, files.start_epoch)
    path = checkpoint.ema_file(files.source_prefix, files.start_epoch)
    if saved is not None:
        ema.restore(saved, path)
    elif session.args.resume:
        raise UserError('--resume --ema: the checkpoint lacks its averaged weights %s' % path)
    else:
        session.logger.info('--ema: the checkpoint has no averaged weights (%s); the average '
                            'starts at its weights', path)
    return ema


def _restore(session):
    files = session.files
    meta = checkpoint.load_checkpoint(files.source_prefix, files.start_epoch, session.net,
                                      session.trainer, session.contexts)
    session.num_update = meta['num_update']
    lr = session.schedule.lr_at(session.num_update)
    session.trainer.set_learning_rate(lr)
    session.last_checkpoint = session_checkpoint(files)
    session.logger.info('resuming from %s at epoch %d (batch %d), learning rate %g',
                        session.last_checkpoint, files.start_epoch, session.num_update, lr)
    threads = os.environ.get('OMP_NUM_THREADS')
    if meta['omp_num_threads'] != threads:
        session.logger.warning('OMP_NUM_THREADS is %s, the checkpoint was written with %s: '
                               'the run goes on, but not bitwise as it would have',
                               threads, meta['omp_num_threads'])


# ---------------------------------------------------------------- one epoch

def train_one_epoch(session, epoch):
    """One pass over the training data; returns the epoch's summed figures and its time."""
    args, logger, trainer = session.args, session.logger, session.trainer
    # Every random choice of an epoch derives from (seed, epoch): a resumed run sees
    # exactly what an uninterrupted one would.
    seed_everything(session.run.rand_seed * 1000003 + epoch)
    session.train_it.set_epoch(epoch)
    session.val_it.set_epoch(epoch)
    if session.mixer is not None:
        session.mixer.start_epoch(session.run.rand_seed, epoch)
    meter = EpochMeter(session.top5)
    tic = window_tic = time.time()
    bar = _progress(session, len(session.train_it), epoch)
    for batch, (data, label) in enumerate(session.train_it, start=1):
        lr = session.schedule.lr_at(session.num_update)
        if lr != trainer.learning_rate:
            _log_rate(session, epoch, lr, batch - 1)
            trainer.set_learning_rate(lr)
        _train_step(session, data, label, meter)
        if bar is not None:
            bar.update(1)
        if batch % args.log_iters == 0:
            speed = args.log_iters * args.batch_size / (time.time() - window_tic)
            _log_window(session, meter, epoch, batch, speed)
            window_tic = time.time()
    if bar is not None:
        bar.close()
    return dict(sums=meter.epoch_sums(), time_cost=time.time() - tic)


def _log_rate(session, epoch, lr, batch):
    if isinstance(session.schedule, StepSchedule):  # the step schedule's line (the port's own)
        session.logger.info('Epoch[%d] learning rate %g from batch %d (batch %d of the epoch)',
                            epoch, lr, session.num_update, batch)
        return
    line = session.schedule.change_line(epoch, lr, session.num_update, batch)
    if line is not None:
        session.logger.info(line)


def _train_step(session, data, label, meter):
    if session.mixer is not None:
        return _mixed_train_step(session, data, label, meter)
    xs = gluon.utils.split_and_load(data, session.contexts)
    ys = gluon.utils.split_and_load(label, session.contexts)
    with autograd.record():
        outs = [session.net(x) for x in xs]
        pairs = [training_loss(out, y, session.args.ensemble_loss) for out, y in zip(outs, ys)]
    _update(session, pairs, outs, ys, meter)


def _mixed_train_step(session, data, label, meter):
    """--label-smoothing / --mixup: dense targets (engine/recipe.py says what is logged)."""
    data, target, reported, label = session.mixer.mix(data, label)
    xs, ys, ts, rs = [gluon.utils.split_and_load(a, session.contexts)
                      for a in (data, label, target, reported)]
    with autograd.record():
        outs = [session.net(x) for x in xs]
        pairs = [recipe.soft_training_loss(out, t, r, session.args.ensemble_loss)
                 for out, t, r in zip(outs, ts, rs)]
    _update(session, pairs, outs, ys, meter)


def _update(session, pairs, outs, ys, meter):
    autograd.backward([objective for objective, _ in pairs])
    global_batch = session.args.batch_size * session.num_workers
    if session.sync is not None:
        session.sync.allreduce_grads()
        session.trainer.update(global_batch)
    else:
        session.trainer.step(global_batch)
    session.num_update += 1
    if session.ema is not None:
        session.ema.update()
    meter.add([reported for _, reported in pairs],
              [network.mean_prediction(o) for o in outs], ys)


def _log_window(session, meter, epoch, batch, speed):
    window, running = meter.next_window(), meter.read_epoch()
    _check_finite(session, window['loss'], epoch, batch)
    if session.board is not None:
        session.board.window(session.num_update, session.trainer.learning_rate,
                             window['loss'], window['top1'])
    top5 = (100 * window['top5'], 100 * running['top5']) if session.top5 else ()
    session.logger.info(logs.batch_line(epoch, batch, speed, window['loss'], running['loss'],
                                        100 * window['top1'], 100 * running['top1'], *top5))


# ---------------------------------------------------------------- end of an epoch

def end_of_epoch(session, epoch, figures):
    """Evaluate, log, append to the metrics, checkpoint; return the epoch's result."""
    args, top5 = session.args, session.top5
    train_sums = figures['sums']
    val_sums = evaluate(session.net, session.val_it, session.contexts, args.test_batch_size,
                        top5)
    if session.sync is not None:  # figures over every worker's images
        train_sums = session.sync.sum_metrics(session.sync.train_key, train_sums)
        val_sums = session.sync.sum_metrics(session.sync.val_key, val_sums)
    train_figures, val = means(train_sums, top5), means(val_sums, top5)
    _check_finite(session, train_figures['loss'], epoch, len(session.train_it))
    for line in logs.epoch_lines(epoch, train_figures['top1'], train_figures['loss'],
                                 figures['time_cost'], val['loss'], val['top1'],
                                 val.get('top5')):
        session.logger.info(line)
    if session.num_workers > 1:
        # Workers that stay in step hold identical weights: the same checksum.
        session.logger.info('Epoch[%d] parameter checksum %.17g', epoch, _checksum(session))
    result = dict(epoch=epoch, train_loss=train_figures['loss'],
                  train_acc=train_figures['top1'], time_cost=figures['time_cost'],
                  val_loss=val['loss'], val_acc=val['top1'], val_top5=val.get('top5'),
                  lr=session.schedule.lr_at(session.num_update - 1))
    if session.ema is not None:
        result.update(_evaluate_average(session, epoch))
    if session.rank == 0:
        logs.append_metrics(session.files.metrics_path, result)
        _maybe_checkpoint(session, epoch + 1)
        if session.best is not None:
            session.best.update(epoch + 1, result['val_acc'], session.net, session.trainer,
                                _checkpoint_meta(session), _averages(session))
        if session.board is not None:
            session.board.epoch(result)
    return result


def _evaluate_average(session, epoch):
    """--ema: the test pass with the averaged weights; its lines and metrics figures."""
    with session.ema.swapped_in():
        sums = evaluate(session.net, session.val_it, session.contexts,
                        session.args.test_batch_size, session.top5)
    if session.sync is not None:
        sums = session.sync.sum_metrics(session.sync.ema_key, sums)
    figures = means(sums, session.top5)
    for line in logs.average_lines(epoch, figures['loss'], figures['top1'],
                                   figures.get('top5')):
        session.logger.info(line)
    found = dict(ema_val_loss=figures['loss'], ema_val_acc=figures['top1'])
    if session.top5:
        found['ema_val_top5'] = figures['top5']
    return found


def _maybe_checkpoint(session, done):
    args, files = session.args, session.files
    if done % args.checkpoint_epochs and done != args.num_epochs:
        return
    checkpoint.save_checkpoint(files.prefix, done, session.net, session.trainer,
                               _checkpoint_meta(session), averages=_averages(session))
    session.last_checkpoint = checkpoint.params_file(files.prefix, done)
    session.logger.info('Saved checkpoint to "%s"', session.last_checkpoint)


def _averages(session):
    return session.ema.state() if session.ema is not None else None


def _checkpoint_meta(session):
    return dict(num_update=session.num_update, rand_seed=session.run.rand_seed,
                run=asdict(session.run), args=vars(session.args))


def _checksum(session):
    ctx = session.contexts[0]
    return float(sum(np.abs(p.data(ctx).asnumpy()).astype(np.float64).sum()
                     for p in session.net.collect_params().values() if p.grad_req != 'null'))


def _check_finite(session, loss, epoch, batch):
    if np.isfinite(loss):
        return
    where = _last_good(session.last_checkpoint)
    raise NonFiniteLoss('the training loss became %s in epoch %d by batch %d; stopped, %s; '
                        'try a lower --lr' % (loss, epoch, batch, where))


def _progress(session, total, epoch):
    if session.rank != 0 or session.args.no_progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc='epoch %d' % epoch, leave=False, unit='batch')
