"""Command-line flags, composed from small helpers shared by the scripts.

The data set table is the scripts' business: they pass the names and the chosen data set's
entry in, so that the engine never reads it.
"""
import math
import os
import re
import sys

from common.errors import UserError

# Top-5 accuracy is measured only where there are at least this many classes (here, beside
# the flags, so that the scripts read it before MXNet is imported).
TOP5_MIN_CLASSES = 5

# The resume rule of the flags composed here (engine/runfiles.changed_flags applies it, with
# engine/recipe_flags.py's own): a resumed run may change where its files go, what it
# reports, which devices it uses and how long it runs (a changed schedule shows in
# lr_step_epochs). The network's own name chose the run (aliases resolve to it). Every other
# flag, present and future, must match the checkpoint's.
MAY_CHANGE_ON_RESUME = frozenset({
    'log_dir', 'exp_name', 'model_prefix', 'load_epoch', 'resume', 'log_iters', 'no_progress',
    'checkpoint_epochs', 'num_epochs', 'data_dir', 'data_threads', 'gpus', 'cpu', 'lr_steps',
    'network', 'rand_seed'})
# The other half of the rule: training flags added after checkpoints were written, and the
# value a checkpoint without them trained with (from its run settings): before
# --bn-momentum, every network but the ImageNet ones kept its BatchNorm statistics with
# momentum 0.99.
ABSENT_MEANT = {'bn_momentum': lambda run: 0.9 if run['network'].startswith('symbol_')
                else 0.99}


def add_network_args(parser, dataset_names, default_network='cross', default_depth=62):
    """The flags that choose a network: shared by train_model.py and show_model.py."""
    group = parser.add_argument_group('network')
    group.add_argument('--network', default=default_network,
                       help='network name (see network.list_nets()); default %(default)s')
    group.add_argument('--depth', type=int, default=default_depth,
                       help='depth of the equivalent plain network; default %(default)s')
    group.add_argument('--widen-factor', type=int, default=1,
                       help='channel multiplier w (16w, 32w, 64w); default %(default)s')
    group.add_argument('--dataset', default='cifar10', choices=dataset_names,
                       help='data set; sets the class count; default %(default)s')
    group.add_argument('--num-classes', type=int, default=None,
                       help='number of classes; default: the data set\'s')
    return group


def num_classes_of(args, dataset_spec):
    """The class count: --num-classes when given, else the data set's."""
    return given(args.num_classes, dataset_spec['num_classes'])


def given(value, default):
    """A flag's value when it was given, else `default`. A given 0 stays 0, to be refused
    by the checks: `value or default` trained --num-classes 0 with the data set's 10."""
    return default if value is None else value


def add_data_args(parser):
    group = parser.add_argument_group('data')
    group.add_argument('--data-dir', default=None,
                       help='folder with the .rec files; default data/<dataset>')
    group.add_argument('--train-dataset', default=None,
                       help="training records; default: the data set's (train.rec)")
    group.add_argument('--val-dataset', default=None,
                       help="test records; default: the data set's (test.rec)")
    group.add_argument('--num-examples', type=int, default=None,
                       help='training images N; sets where the learning rate steps: an '
                            'epoch of the schedule is floor(N / (batch-size x workers)) '
                            'batches, so a step "at epoch E" falls at batch E*floor(...) of '
                            'the run, a few batches before the iterator\'s epoch ends (on one '
                            'machine as the original). Default: the original\'s presets '
                            '(CIFAR 50000, SVHN 604388, ImageNet 1281167); Fashion-MNIST: '
                            'its record count')
    group.add_argument('--data-shape', type=int, default=None,
                       help='input height and width; default: the data set\'s')
    group.add_argument('--aug-type', type=int, default=None, choices=(0, 1, 2),
                       help='0 none, 1 pad 4 + crop + mirror, 2 crop + mirror (ImageNet: '
                            '0 random crop + mirror only, else also scale, aspect and HSL '
                            'jitter); default: the data set\'s')
    group.add_argument('--data-threads', type=int, default=None,
                       help='decoding threads; default: one per core')
    return group


def add_device_args(parser, default_kv_store='device'):
    group = parser.add_argument_group('devices')
    group.add_argument('--gpus', default=None,
                       help="GPU ids, e.g. 0,1; '' for the CPU; default: every GPU MXNet "
                            "sees, else the CPU")
    group.add_argument('--cpu', action='store_true', help='train on the CPU')
    group.add_argument('--cpu-contexts', type=int, default=1,
                       help='number of CPU contexts to split each batch over (testing)')
    group.add_argument('--kv-store', default=default_kv_store,
                       help='device, local, dist_sync or dist_device_sync; '
                            'default %(default)s')
    return group


def add_fit_args(parser):
    group = parser.add_argument_group('training')
    group.add_argument('--batch-size', type=int, default=None,
                       help="images per batch (per worker with dist kvstores); default: the "
                            "data set's (64; ImageNet 256)")
    group.add_argument('--test-batch-size', type=int, default=None,
                       help="test images per batch; default: the data set's (400 on CIFAR)")
    group.add_argument('--num-epochs', type=int, default=None,
                       help="epochs; default: the data set's (400 on CIFAR, 40 on SVHN)")
    group.add_argument('--lr', type=float, default=0.1, help='initial learning rate')
    group.add_argument('--lr-factor', type=float, default=0.1,
                       help='learning-rate factor at each step')
    group.add_argument('--lr-steps', default=None,
                       help='epochs at which the learning rate is multiplied by --lr-factor, '
                            'e.g. 100,150; default: the data set\'s (1/2, 3/4 and 7/8 of the '
                            'epochs; ImageNet 30,60,90)')
    group.add_argument('--momentum', type=float, default=0.9, help='Nesterov momentum')
    group.add_argument('--wd', type=float, default=1e-4,
                       help='weight decay on every learnable parameter')
    group.add_argument('--bn-momentum', type=float, default=None, metavar='M',
                       help="momentum of the BatchNorm running statistics; default: the "
                            "original's for the network (0.9; the ensemble 0.99)")
    group.add_argument('--ensemble-loss', default='sum', choices=('sum', 'mean'),
                       help="ensemble only: train on the sum of the 8 components' "
                            "cross-entropies (each gets its full gradient, as 8 grouped "
                            "softmax outputs in MXNet) or on their mean (1/8 of it); the "
                            "logged training loss is the mean in both; default %(default)s")
    group.add_argument('--rand-seed', type=int, default=None,
                       help='random seed; default: drawn and written to the log')
    return group


def add_log_args(parser):
    group = parser.add_argument_group('logs and checkpoints')
    group.add_argument('--log-dir', default='./snapshot/', help='where logs and weights go')
    group.add_argument('--exp-name', default=None,
                       help="log name part before the run number; default 'exp'")
    group.add_argument('--log-iters', type=int, default=None,
                       help="a log line every this many batches; default: the data set's "
                            "(50; ImageNet 10)")
    group.add_argument('--checkpoint-epochs', type=int, default=None,
                       help='checkpoint every this many epochs (and after the last); '
                            "default: the data set's (num_epochs/8; ImageNet 5)")
    group.add_argument('--model-prefix', default=None,
                       help='weights prefix to load with --load-epoch; default: the latest '
                            'run of this configuration')
    group.add_argument('--load-epoch', type=int, default=None,
                       help='continue from the checkpoint saved after this many epochs')
    group.add_argument('--resume', action='store_true',
                       help='continue the latest run of this configuration from its latest '
                            'checkpoint')
    group.add_argument('--no-progress', action='store_true',
                       help='no progress bar, even on a terminal')
    return group


# Flags whose default is the data set's: (flag, key of its entry in the scripts' table).
TABLE_DEFAULTS = (('num_epochs', 'num_epochs'), ('aug_type', 'aug_type'),
                  ('data_shape', 'data_shape'), ('batch_size', 'batch_size'),
                  ('lr_steps', 'lr_steps'),
                  ('log_iters', 'log_iters'), ('checkpoint_epochs', 'checkpoint_epochs'),
                  ('train_dataset', 'train_rec'), ('val_dataset', 'val_rec'))


def resolve_defaults(args, dataset_spec):
    """Fill every per-dataset default that the user left out, and check the numbers.

    `dataset_spec` is the chosen data set's entry of the scripts' table (data/datasets.py),
    which holds the recipe's defaults.
    """
    table = dataset_spec
    args.num_classes = num_classes_of(args, table)
    for name, key in TABLE_DEFAULTS:
        if getattr(args, name) is None:
            setattr(args, name, table[key])
    if args.test_batch_size is None:   # as the original: at least the training batch
        args.test_batch_size = max(table['min_test_batch'], args.batch_size)
    if args.lr_steps is None and table.get('lr_step_every'):   # ImageNet: every 30 epochs
        every = table['lr_step_every']
        args.lr_steps = ','.join(str(e) for e in range(every, args.num_epochs, every))
    if args.data_dir is None:
        args.data_dir = os.path.join('data', args.dataset)
    if args.exp_name is None:
        args.exp_name = 'exp'
    if args.checkpoint_epochs is None:
        args.checkpoint_epochs = max(1, args.num_epochs // 8)
    if args.num_examples is not None and args.num_examples < 1:
        raise UserError('--num-examples must be at least 1 (got %d)' % args.num_examples)
    for name in ('batch_size', 'test_batch_size', 'num_epochs', 'log_iters',
                 'checkpoint_epochs', 'num_classes', 'data_shape', 'cpu_contexts'):
        if getattr(args, name) < 1:
            raise UserError('--%s must be at least 1 (got %d)'
                            % (name.replace('_', '-'), getattr(args, name)))
    if args.resume and args.load_epoch is not None:
        raise UserError('use either --resume or --load-epoch, not both')
    check_values(args)
    return args


# ---------------------------------------------------------------- value checks
# Flags argparse accepts but no run can use: refused before anything is built or written,
# each with one line that says what would work.

MAX_SEED = 2 ** 32 - 1          # numpy's seed range
MAX_CPU_CONTEXTS = 8            # CPU contexts share one device: they exist to test
                                # multi-device training, more only slow a run
KV_STORES = ('device', 'local', 'dist_sync', 'dist_device_sync')
LAUNCHER_VARIABLES = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT')

# Training memory, estimated before the network is built (CIFAR-style networks, whose
# activations shrink 4x per group). Measured on the CPU (DFN-MR, widen 1, 32x32, batch 16,
# peak RSS): depth 110 9 MB, depth 302 28 MB, depth 1002 74 MB per image; parameters
# 15,550 per unit of depth and widen^2 (d110 w1: 1.71M, d98 w4: 24.15M).
ACTIVATION_BYTES = 80           # per image, per unit of depth, pixel and widen factor
PARAMS_PER_DEPTH = 15600        # times widen^2
PARAM_BYTES = 16                # weight, gradient, momentum and one copy, float32
EVAL_LAYERS = 4                 # a test batch keeps only a few layers' outputs alive
MEMORY_LIMIT = 32e9             # resnet d1202 w1 at batch 64 needs about 7 GB


def check_values(args):
    """Refuse values argparse accepts but no run can use (UserError, one line)."""
    _check_floats(args)
    if args.rand_seed is not None and not 0 <= args.rand_seed <= MAX_SEED:
        raise UserError('--rand-seed must be between 0 and %d (got %d); leave it out to '
                        'draw one' % (MAX_SEED, args.rand_seed))
    args.lr_step_epochs = lr_step_epochs(args.lr_steps, args.num_epochs)
    _check_devices(args)
    check_exp_name(args.exp_name)
    if args.data_threads is not None and args.data_threads < 1:
        raise UserError('--data-threads must be at least 1 (got %d)' % args.data_threads)
    if args.dataset != 'imagenet':   # the ImageNet networks have a fixed size
        check_network_size(args.depth, args.widen_factor, args.num_classes, args.batch_size,
                           args.data_shape)
        _check_test_batch(args)


def _check_floats(args):
    for flag, value, allowed, rule in (
            ('--lr', args.lr, lambda v: v > 0, 'positive'),
            ('--lr-factor', args.lr_factor, lambda v: 0 < v <= 1,
             'in (0, 1]: the rate is multiplied by it at each step'),
            ('--momentum', args.momentum, lambda v: 0 <= v < 1, 'in [0, 1)'),
            ('--wd', args.wd, lambda v: v >= 0, 'at least 0'),
            ('--bn-momentum', args.bn_momentum, lambda v: 0 <= v < 1,
             'in [0, 1): the weight of the old running statistics at each batch')):
        if value is None:   # --bn-momentum left out: the network's own
            continue
        if not math.isfinite(value):
            raise UserError('%s must be a finite number (got %s)' % (flag, value))
        if not allowed(value):
            raise UserError('%s must be %s (got %g)' % (flag, rule, value))


def lr_step_epochs(text, num_epochs):
    """The epochs --lr-steps names (None: 1/2, 3/4 and 7/8 of the run), checked: increasing
    positive epochs. Steps after the last epoch are kept for a run trained in parts (--resume
    with a larger --num-epochs, which must keep the flags), and said."""
    if text is None:
        return [num_epochs // 2, num_epochs * 3 // 4, num_epochs * 7 // 8]
    try:
        epochs = [int(x) for x in text.split(',') if x.strip()]
    except ValueError:
        raise UserError('--lr-steps=%r is not a comma-separated list of epochs, e.g. 100,150'
                        % text)
    if any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise UserError('--lr-steps=%s must list increasing epochs, each once (the rate '
                        'drops by --lr-factor at each), e.g. --lr-steps=%d,%d'
                        % (text, num_epochs // 2, num_epochs * 3 // 4))
    if epochs and epochs[0] < 1:
        raise UserError('--lr-steps=%s: epoch %d is before the first step can be (1); the '
                        'initial rate is --lr' % (text, epochs[0]))
    later = [str(e) for e in epochs if e > num_epochs]
    if later:
        print('notice: --lr-steps %s lie%s after --num-epochs %d: they act only when the run '
              'is continued with --resume and a larger --num-epochs'
              % (','.join(later), 's' if len(later) == 1 else '', num_epochs),
              file=sys.stderr)
    return epochs


def _check_devices(args):
    if args.cpu_contexts > MAX_CPU_CONTEXTS or args.batch_size % args.cpu_contexts:
        raise UserError('--cpu-contexts must be at most %d and divide --batch-size %d '
                        '(got %d); they share the CPU and exist to test multi-device training'
                        % (MAX_CPU_CONTEXTS, args.batch_size, args.cpu_contexts))
    if args.kv_store == 'dist_async':
        raise UserError('--kv-store=dist_async is not supported: this port sums the workers\' '
                        'gradients itself, synchronously; use --kv-store=dist_sync, started '
                        'through tools/launch.py')
    if args.kv_store not in KV_STORES:
        raise UserError('--kv-store=%s is not one of %s' % (args.kv_store, ', '.join(KV_STORES)))
    missing = [name for name in LAUNCHER_VARIABLES if not os.environ.get(name)]
    if args.kv_store.startswith('dist') and missing:
        raise UserError('--kv-store=%s needs the environment of a launcher (%s not set): start '
                        'the workers with tools/launch.py -n <workers> python <script> ..., or '
                        'train on one machine with --kv-store=device'
                        % (args.kv_store, ', '.join(missing)))


def check_exp_name(name):
    """A file-name part: no folder, no '..', nothing a shell or file system mangles."""
    if not re.fullmatch(r'[\w.+=-]{1,100}', name) or '..' in name:
        raise UserError('--exp-name=%r must be 1 to 100 letters, digits or . _ - + = '
                        '(no path separators, no \'..\'): it becomes part of the log\'s '
                        'file name' % name)


def _check_test_batch(args):
    per_image = ACTIVATION_BYTES * EVAL_LAYERS * args.widen_factor * args.data_shape ** 2
    if per_image * args.test_batch_size > MEMORY_LIMIT:
        raise UserError('--test-batch-size %d would need about %.0f GB to evaluate; the limit '
                        'is %.0f GB' % (args.test_batch_size,
                                        per_image * args.test_batch_size / 1e9,
                                        MEMORY_LIMIT / 1e9))


def check_network_size(depth, widen, num_classes, batch_size=64, data_shape=32):
    """Refuse CIFAR-style networks whose training would need more than MEMORY_LIMIT
    (estimated); the defaults: train_model.py's batch on CIFAR."""
    for flag, value in (('--depth', depth), ('--widen-factor', widen),
                        ('--num-classes', 1 if num_classes is None else num_classes)):
        if value < 1:
            raise UserError('%s must be at least 1 (got %d)' % (flag, value))
    params = PARAMS_PER_DEPTH * depth * widen ** 2 + 64 * widen * (num_classes or 0)
    per_image = ACTIVATION_BYTES * depth * widen * data_shape ** 2
    need = PARAM_BYTES * params + per_image * batch_size
    if need > MEMORY_LIMIT:
        raise UserError(
            '--depth %d --widen-factor %d with %d images of %dx%d per batch would need about '
            '%.0f GB to train (%.0f MB per image, %.0fM parameters; estimated from depth 1002: '
            '74 MB per image); the limit is %.0f GB: lower --depth, --widen-factor, '
            '--batch-size or --data-shape' % (
                depth, widen, batch_size, data_shape, data_shape, need / 1e9,
                per_image / 1e6, params / 1e6, MEMORY_LIMIT / 1e9))
