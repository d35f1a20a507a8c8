"""Paths from the input to the output of a network, counted on its symbol graph.

A path follows the data from the `data` variable through the operators to an output; its
depth is the number of convolutions on it (the classifier is not counted). An operator that
takes the same array twice (`x + x`, as DFN-MR's first merge of two equal streams) lies on
two paths. For a network with several outputs (the ensemble) the paths to every output are
counted. Counts are exact Python integers: a deep DFN-MR has far more paths than a float
holds digits.
"""
import json
from collections import Counter

from network import to_symbol


def path_depths_of_json(symbol_json, data_name='data', counted_op='Convolution'):
    """{depth: number of paths} of a symbol's JSON (the output of `Symbol.tojson()`)."""
    graph = json.loads(symbol_json) if isinstance(symbol_json, str) else symbol_json
    nodes = graph['nodes']
    reach = [None] * len(nodes)   # node -> Counter(depth -> paths from data), None: unreached
    for index, node in enumerate(nodes):
        if node['op'] == 'null':
            if node['name'] == data_name:
                reach[index] = Counter({0: 1})
            continue
        # the JSON lists nodes in topological order: the inputs are done
        total = Counter()
        for source, _, _ in node['inputs']:
            if reach[source] is not None:
                total.update(reach[source])
        if not total:
            continue
        step = 1 if node['op'] == counted_op else 0
        reach[index] = Counter({depth + step: n for depth, n in total.items()})
    found = Counter()
    for head, _, _ in graph['heads']:
        found.update(reach[head] or {})
    if not found:
        raise ValueError('no path from %r to an output' % data_name)
    return dict(sorted(found.items()))


def path_depths(net):
    """{depth in convolutions: number of paths} of a Gluon network (traced symbolically;
    nothing is initialised)."""
    return path_depths_of_json(to_symbol(net).tojson())


def summarize(depths):
    """(number of paths, mean depth, median depth) of a {depth: count} table.

    The mean is a float from exact integer sums; the median is the lower median (the
    smallest depth with at least half of the paths at or below it)."""
    total = sum(depths.values())
    mean = sum(d * n for d, n in depths.items()) / total
    seen = 0
    for depth in sorted(depths):
        seen += depths[depth]
        if 2 * seen >= total:
            return total, mean, depth
    raise ValueError('empty path table')
