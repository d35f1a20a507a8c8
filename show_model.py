#!/usr/bin/env python
"""Draw a network the way the original's pictures do, and print its parameter count.

    python show_model.py --network=half --depth=26            # visualize/half_d26.png
    python show_model.py --network=cross --depth=26 --format svg --out-dir /tmp/
    python show_model.py --network=symbol_cross                # visualize/symbol_cross.png

Paper names work too (`dfn-mr` is cross, `dfn-il` half); files take the canonical name.

The picture runs from a text node "Input" at the top down to the classifier. Only the
convolutions and the classifier are boxes, filled by group without a border (ColorBrewer
Set2: g1 teal, g2 salmon, g3 blue, g4 pink; the stem orange, the classifier green); sums are
small white circles with a "+". BatchNorm, ReLU, pooling, flatten, softmax and the scalar
multiply are left out and the edges joined through them. Box labels follow the original:

    C00        the stem convolution
    R01, R02   main-path convolutions, numbered by the first use of their weight
    C          a shortcut convolution or the line convolution of fuse3/fuse6
    L01..L03   the left (single-convolution) path of the ensemble, by group
    FC         the classifier

A network with several outputs (the ensemble's 8 components) is drawn one column per
output, each with its own copy of the layers it uses; boxes that share weights share a
label. Rendering needs Graphviz's `dot` program (Debian: `sudo apt-get install graphviz`).
"""
import json
import os
import re
import shutil
import subprocess

from common.atomic import write_whole
from common.errors import ArgumentParser, UserError, add_old_spelling, run_main
from data.datasets import DATASETS, dataset_names
from engine.flags import add_network_args, check_network_size, num_classes_of

FORMATS = ('png', 'svg', 'pdf')
INSTALL_DOT = 'sudo apt-get install graphviz'

# Operators drawn as a "+" circle; chains of them feeding only each other become one circle.
SUM_OPS = frozenset(['elemwise_add', '_plus', '_Plus', '_add', 'broadcast_add',
                     'broadcast_plus', 'add_n', 'ElementWiseSum', '_internal._plus'])
CONCAT_OPS = frozenset(['Concat', 'concat'])

# ColorBrewer Set2, as the original pictures use it; the stem is X11 "orange".
GROUP_COLORS = ['#66c2a5', '#fc8d62', '#8da0cb', '#e78ac3', '#ffd92f', '#e5c494']
STEM_COLOR = '#ffa500'
FC_COLOR = '#a6d854'
OTHER_COLOR = '#b3b3b3'

# Name conventions of the network package (Gluon prefixes), matched on '_' boundaries.
_RE = {kind: re.compile(r'(?:^|_)%s_' % pattern) for kind, pattern in [
    ('stem', r'stem\d*'), ('short', r'short\d*'), ('line', r'line\d*'),
    ('left', r'left\d*'), ('fc', r'fc\d*')]}
_RE_GROUP = re.compile(r'(?:^|_)g(\d+)_')


# ---------------------------------------------------------------------------------------
# From the traced symbol to the drawn graph (pure functions of the symbol's JSON)
# ---------------------------------------------------------------------------------------

def conv_role(name):
    """What a convolution is, from its weight's name: stem, short, line, left or main."""
    for kind in ('stem', 'short', 'line', 'left'):
        if _RE[kind].search(name):
            return kind
    return 'main'


def group_of(name):
    """The group number in a name (`..._g2_...` -> 2), or None."""
    match = _RE_GROUP.search(name)
    return int(match.group(1)) if match else None


class Graph(object):
    """The drawn graph: `nodes` maps id -> dict(kind, label, color), in drawing order;
    `edges` is a list of (source id, target id), one per input (repeats kept)."""

    def __init__(self):
        self.nodes = {}
        self.edges = []

    def add_node(self, node_id, **attrs):
        self.nodes[node_id] = attrs

    def count(self, kind=None, label=None):
        """How many nodes of this kind (box, sum, concat, input) and/or label prefix."""
        return sum(1 for n in self.nodes.values()
                   if (kind is None or n['kind'] == kind)
                   and (label is None or n['label'].startswith(label)))

    def labels(self, kind='box'):
        return [n['label'] for n in self.nodes.values() if n['kind'] == kind]

    def columns(self):
        """The number of weakly connected parts once the input node is removed."""
        parent = {n: n for n in self.nodes if self.nodes[n]['kind'] != 'input'}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        for a, b in self.edges:
            if a in parent and b in parent:
                parent[find(a)] = find(b)
        return len({find(n) for n in parent})


def _kept_nodes(nodes, users, sum_users, merge_sums):
    """Index -> what each kept node is and how it is labelled (build_graph's rules)."""
    info = {}
    numbers = {}   # main-path weights, numbered by first use in topological order
    for i, node in enumerate(nodes):
        op = node['op']
        if op == 'null' and node['name'] == 'data':
            info[i] = dict(kind='input', label='Input', color=None)
        elif op == 'Convolution':
            info[i] = _conv_info(nodes, node, numbers)
        elif op == 'FullyConnected':
            info[i] = dict(kind='box', label='FC', color=FC_COLOR, role='fc')
        elif op in SUM_OPS:
            if not (merge_sums and users[i] == 1 and sum_users[i] == 1):
                info[i] = dict(kind='sum', label='+', color='white')
        elif op in CONCAT_OPS:
            info[i] = dict(kind='concat', label='||', color='white')
    return info


def _conv_info(nodes, node, numbers):
    """A convolution's box: its label and colour from its weight's name."""
    weight = nodes[node['inputs'][1][0]]['name'] if len(node['inputs']) > 1 else node['name']
    role = conv_role(weight)
    group = group_of(weight)
    color = GROUP_COLORS[(group - 1) % len(GROUP_COLORS)] if group else OTHER_COLOR
    if role == 'stem':
        label, color = 'C00', STEM_COLOR
    elif role in ('short', 'line'):
        label = 'C'
    elif role == 'left':
        label = 'L%02d' % (group or 0)
    else:
        numbers.setdefault(weight, len(numbers) + 1)
        label = 'R%02d' % numbers[weight]
    return dict(kind='box', label=label, color=color, role=role, weight=weight)


def build_graph(symbol_json, merge_sums=True):
    """The drawn graph of a symbol given as JSON text or the parsed dict.

    Convolutions, fully connected layers, sums and concatenations are kept; every other
    operator is dropped and its data inputs are joined to its consumers. Parameter
    variables (weights, BN statistics) are not data. With `merge_sums`, a sum whose only
    consumer is another sum (`a + b + c` written as two additions) is drawn as part of it.
    With several outputs, each output's ancestry is drawn separately.
    """
    js = json.loads(symbol_json) if isinstance(symbol_json, str) else symbol_json
    nodes = js['nodes']
    heads = [h[0] for h in js['heads']]

    def is_param(i):
        return nodes[i]['op'] == 'null' and nodes[i]['name'] != 'data'

    data_inputs = [[inp[0] for inp in node['inputs'] if not is_param(inp[0])]
                   for node in nodes]
    users = [0] * len(nodes)
    sum_users = [0] * len(nodes)
    for i, ins in enumerate(data_inputs):
        for j in ins:
            users[j] += 1
            sum_users[j] += nodes[i]['op'] in SUM_OPS
    for h in heads:
        users[h] += 1

    info = _kept_nodes(nodes, users, sum_users, merge_sums)

    # Kept nodes that feed each kept node, through the dropped ones (repeats kept).
    memo = {}

    def sources(i):
        if i not in memo:
            found = []
            for j in data_inputs[i]:
                found.extend([j] if j in info else sources(j))
            memo[i] = found
        return memo[i]

    return _assemble(info, heads, sources)


def _ancestry(starts, sources):
    seen, stack = set(), list(starts)
    while stack:
        k = stack.pop()
        if k not in seen:
            seen.add(k)
            stack.extend(sources(k))
    return seen


def _assemble(info, heads, sources):
    """One copy of the drawing per output when there are several (the ensemble's columns);
    the input node is drawn once, above everything."""
    head_kept = [[h] if h in info else sources(h) for h in heads]
    tags = [''] if len(heads) == 1 else ['o%d_' % n for n in range(len(heads))]
    graph = Graph()
    for i in sorted(info):
        if info[i]['kind'] == 'input':
            graph.add_node('n%d' % i, **info[i])
    for tag, kept in zip(tags, head_kept):
        for i in sorted(_ancestry(kept, sources)):
            if info[i]['kind'] == 'input':
                continue
            graph.add_node('%sn%d' % (tag, i), **info[i])
            for j in sources(i):
                src = 'n%d' % j if info[j]['kind'] == 'input' else '%sn%d' % (tag, j)
                graph.edges.append((src, '%sn%d' % (tag, i)))
    return graph


# ---------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------

def _quote(text):
    return '"%s"' % str(text).replace('\\', '\\\\').replace('"', '\\"')


def to_dot(graph, dpi=120):
    """The Graphviz source of the picture, in the original's style.

    Like MXNet's plot_network, which drew the original pictures, every edge goes from a
    layer to its input with `dir=back` and `rankdir=BT`: the input ends at the top, the
    arrows point down, and dot orders and ranks the nodes as in the originals (the merge
    of cross between its two streams, the shortcut convs inside the streams). Sizes are
    those of the originals at 120 dpi: boxes 1.6 x 0.8 inch, Arial (Liberation Sans).
    """
    font = 'Arial'
    lines = [
        'digraph network {',
        '  graph [rankdir=BT, nodesep=0.2, ranksep=0.41, bgcolor=white, dpi=%d];' % dpi,
        '  node [fontname=%s, fontsize=44, shape=box, style=filled, penwidth=0, '
        'fixedsize=true, height=0.8, width=1.6];' % _quote(font),
        '  edge [arrowsize=0.7, penwidth=1, color=black, dir=back];',
    ]
    for node_id, node in graph.nodes.items():
        kind = node['kind']
        if kind == 'input':
            attrs = dict(label='Input', shape='plaintext', style='', width=1.9, height=0.8,
                         fontsize=48)
        elif kind == 'box':
            width = 0.9 if len(node['label']) == 1 else 1.6
            attrs = dict(label=node['label'], fillcolor=node['color'], width=width)
        else:
            attrs = dict(label=node['label'], shape='circle', fillcolor='white',
                         color='black', penwidth=1.5, width=0.93, height=0.93,
                         fontsize=54)
        lines.append('  %s [%s];' % (node_id, ', '.join(
            '%s=%s' % (k, _quote(v))
            for k, v in sorted(attrs.items()))))
    for src, dst in graph.edges:
        lines.append('  %s -> %s;' % (dst, src))      # drawn backwards: see above
    lines.append('}')
    return '\n'.join(lines) + '\n'


def find_dot():
    dot = shutil.which('dot')
    if dot is None:
        raise UserError("Graphviz's `dot` program is not on PATH; install it: %s"
                        % INSTALL_DOT)
    return dot


def render(dot_source, path, fmt, dot=None):
    """Run `dot` to write the picture at `path`, whole or not at all (write_whole: dot
    writes a scratch file, renamed onto `path` once dot succeeded)."""
    dot = dot or find_dot()

    def run_dot(temp):
        proc = subprocess.run([dot, '-T' + fmt, '-o', temp], input=dot_source.encode(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0 or not os.path.isfile(temp) or os.path.getsize(temp) == 0:
            message = proc.stderr.decode(errors='replace').strip().splitlines()
            raise UserError('dot could not write %s: %s' % (
                path, message[-1] if message else 'exit code %d' % proc.returncode))
    write_whole(path, run_dot)


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------

def make_net(args):
    """The network the flags name, its input shape and its file stem."""
    import network
    if args.num_classes is not None and args.num_classes < 1:
        raise UserError('--num-classes must be at least 1 (got %d)' % args.num_classes)
    try:
        name = network.resolve_name(args.network)    # paper names are aliases
        spec = network.SPECS[name]
        if spec.input_shape:        # a fixed input (ImageNet): its own class count
            num_classes, image = args.num_classes, spec.input_shape
        else:
            table = DATASETS[args.dataset]
            num_classes = num_classes_of(args, table)
            image = (table['channels'], table['data_shape'], table['data_shape'])
            # what train_model.py refuses to train (at its default batch) is not drawn
            check_network_size(args.depth, args.widen_factor, num_classes,
                               data_shape=table['data_shape'])
        net = network.get_net(name, num_classes=num_classes, depth=args.depth,
                              widen_factor=args.widen_factor)
    except ValueError as err:
        raise UserError(str(err))
    stem = name if spec.paper_depth else '%s_d%d' % (name, args.depth)
    if args.widen_factor != 1 and not spec.paper_depth:
        stem += 'w%d' % args.widen_factor
    return net, (1,) + image, stem


def trace(net):
    """The symbol of a Gluon block as JSON text (one head per output)."""
    import network
    return network.to_symbol(net).tojson()


def format_params(count):
    return 'network parameters: %.4fM (%s)' % (count / 1e6, '{:,}'.format(count))


def parse_args(argv=None):
    parser = ArgumentParser(
        description='Draw a network in the style of the original pictures and print its '
                    'parameter count. Writes <out>/<network>_d<depth>.<format>, with '
                    'w<widen> appended when --widen-factor is not 1 (e.g. cross_d26w4.png); '
                    'the ImageNet networks (symbol_cross, symbol_resnet), whose depth is '
                    'fixed, are written as <network>.<format>. Needs Graphviz\'s `dot` '
                    '(%s).' % INSTALL_DOT)
    add_network_args(parser, dataset_names())
    out = parser.add_argument_group('output')
    out.add_argument('--format', default='png', choices=FORMATS,
                     help='picture format; default %(default)s')
    out.add_argument('--out-dir', default='visualize/',
                     help='folder to write the picture to; default %(default)s')
    add_old_spelling(out, '--out', dest='out_dir')
    return parser.parse_args(argv)


def prepare_out(folder):
    """Create the output folder if needed; a UserError when it cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UserError('cannot create the output folder %s: %s'
                        % (folder, err.strerror or err))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError('cannot write to the output folder %s' % folder)


def main(argv=None):
    args = parse_args(argv)
    dot = find_dot()
    net, shape, stem = make_net(args)
    prepare_out(args.out_dir)
    path = os.path.join(args.out_dir, '%s.%s' % (stem, args.format))

    import network
    graph = build_graph(trace(net))
    print(format_params(network.count_params(net, shape)))
    render(to_dot(graph), path, args.format, dot)
    print('wrote %s' % path)
    return 0


if __name__ == '__main__':
    run_main(main)
