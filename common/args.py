"""Command-line flags, composed from small helpers shared by the scripts."""
from data.datasets import DATASETS, dataset_names


def add_network_args(parser, default_network='cross', default_depth=62):
    """The flags that choose a network: shared by train_model.py and show_model.py."""
    group = parser.add_argument_group('network')
    group.add_argument('--network', default=default_network,
                       help='network name (see network.list_nets()); default %(default)s')
    group.add_argument('--depth', type=int, default=default_depth,
                       help='depth of the equivalent plain network; default %(default)s')
    group.add_argument('--widen-factor', type=int, default=1,
                       help='channel multiplier w (16w, 32w, 64w); default %(default)s')
    group.add_argument('--dataset', default='cifar10', choices=dataset_names(),
                       help='data set; sets the class count; default %(default)s')
    group.add_argument('--num-classes', type=int, default=None,
                       help='number of classes; default: the data set\'s')
    return group


def num_classes_of(args):
    """The class count: --num-classes when given, else the data set's."""
    return args.num_classes or DATASETS[args.dataset]['num_classes']
