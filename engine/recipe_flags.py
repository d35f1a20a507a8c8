"""The flags of the opt-in recipe options (engine/recipe.py, engine/schedule.py,
engine/ema.py, engine/best.py, engine/tensorboard.py). No mxnet import here: the scripts
parse their flags before MXNet is configured.
"""
import math

from common.errors import UserError

# The resume rule of these flags (engine/runfiles.changed_flags): --save-best and
# --tensorboard change no weight, so a resumed run may change them; every other one changes
# what is trained and must match the checkpoint's (and, for cosine, so must the --num-epochs
# its curve ends at: engine/schedule.py). --ema changes only the averaged weights, which a
# resume must continue alike: it must match too.
MAY_CHANGE_ON_RESUME = frozenset({'save_best', 'tensorboard'})
# The other half of the rule: a checkpoint written before --clip-gradient, --ema and
# --cutmix existed trained with all three off.
ABSENT_MEANT = {'clip_gradient': lambda run: None, 'ema': lambda run: 0.0,
                'cutmix': lambda run: 0.0}


def add_recipe_args(parser):
    group = parser.add_argument_group('recipe options (off by default: the original recipe)')
    group.add_argument('--lr-mode', default='step', choices=('step', 'cosine'),
                       help='step: the original multi-step rate; cosine: half a cosine per '
                            'batch down to 0 at the last batch; default %(default)s')
    group.add_argument('--warmup-epochs', type=int, default=0,
                       help='raise the rate linearly per batch over this many epochs first; '
                            'default %(default)s')
    group.add_argument('--label-smoothing', type=float, default=0.0,
                       help='train against (1-EPS) one-hot + EPS/classes; the logged loss '
                            'stays the plain cross-entropy; default %(default)s')
    group.add_argument('--mixup', type=float, default=0.0, metavar='ALPHA',
                       help='mix each batch with its reverse, weight ~ Beta(ALPHA, ALPHA); '
                            '0 off; default %(default)s')
    group.add_argument('--cutmix', type=float, default=0.0, metavar='ALPHA',
                       help='paste a box of the reversed batch into each batch, its area '
                            '1-lam, lam ~ Beta(ALPHA, ALPHA); targets mixed by area; not with '
                            '--mixup; 0 off; default %(default)s')
    group.add_argument('--no-wd-bn', action='store_true',
                       help='no weight decay on BatchNorm gamma/beta and on biases')
    group.add_argument('--clip-gradient', type=float, default=None, metavar='C',
                       help="clip every gradient element to [-C, C] before the update "
                            "(MXNet's clip_gradient: per element, not the norm); default off")
    group.add_argument('--ema', type=float, default=0.0, metavar='DECAY',
                       help='also keep, evaluate and save an exponential moving average of '
                            'the weights, updated after every batch with this decay (e.g. '
                            '0.999); 0 off; default %(default)s')
    group.add_argument('--save-best', action='store_true',
                       help='also keep <prefix>-best.params/.state, the epoch with the best '
                            'test accuracy so far')
    group.add_argument('--tensorboard', default=None, metavar='DIR',
                       help='write TensorBoard scalars to DIR (needs tensorboardX, see '
                            'requirements-tensorboard.txt)')
    return group


def check_args(args):
    if args.warmup_epochs < 0:
        raise UserError('--warmup-epochs must be 0 or more (got %d)' % args.warmup_epochs)
    if not 0.0 <= args.label_smoothing < 1.0:
        raise UserError('--label-smoothing must be in [0, 1) (got %g)' % args.label_smoothing)
    for flag, value in (('--mixup', args.mixup), ('--cutmix', args.cutmix)):
        if not (math.isfinite(value) and value >= 0.0):
            raise UserError('%s must be 0 (off) or positive (got %g)' % (flag, value))
    if args.mixup > 0 and args.cutmix > 0:
        raise UserError('--mixup and --cutmix cannot be combined (each batch is mixed one '
                        'way); choose one')
    if args.clip_gradient is not None and not (math.isfinite(args.clip_gradient)
                                               and args.clip_gradient > 0):
        raise UserError('--clip-gradient must be a positive bound (got %g); leave it out for '
                        'no clipping' % args.clip_gradient)
    if not (args.ema == 0.0 or 0.0 < args.ema < 1.0):
        raise UserError('--ema must be a decay in (0, 1), e.g. 0.999, or 0 for off (got %g)'
                        % args.ema)
