"""What each part contributes in the ensemble view (tools/components.py).

- Leave-one-out: N_e without component k, the averaged softmax of the other components.
- Path removal (fuse3, fuse6): the whole network with one block keeping only one of its two
  paths, `relu(right(x))` without the left path or `relu(left(x))` without the right one
  (network/lesion.py); every weight and BatchNorm statistic stays as trained, nothing is
  re-estimated, so the layers after the block see the one path where they were trained on
  the sum of two.
- BatchNorm re-estimation noise: a skip network's components re-estimated on several
  numbers of training batches, several draws each; the spread of their test accuracies.
"""
import mxnet as mx
import numpy as np

from common.errors import UserError


def leave_one_out_hits(probabilities, labels):
    """For each k, how many images the mean of `probabilities` without the k-th gets right
    (`probabilities`: per component a (batch, classes) softmax NDArray)."""
    n = len(probabilities)
    hits = []
    for k in range(n):
        others = mx.nd.add_n(*(probabilities[:k] + probabilities[k + 1:])) / (n - 1)
        hits.append((others.argmax(axis=1) == labels).sum().asscalar())
    return hits


def accuracy(net, batches):
    """Test accuracy of `net`'s output over `batches` of (data, label)."""
    correct = seen = 0
    for x, y in batches:
        correct += (net(x).argmax(axis=1) == y).sum().asscalar()
        seen += x.shape[0]
    return correct / seen


def path_removal(net, batches):
    """[(block, removed path, kept path, test accuracy)] of a skip network, each block's
    left and then right path removed in turn; the network is restored afterwards."""
    from network import lesion
    from network.skip import SkipBlock
    rows = []
    try:
        for block, _ in lesion.named_blocks(net, SkipBlock):
            for removed, kept in (('left', 'right'), ('right', 'left')):
                lesion.set_removed_paths(net, {block: removed})
                rows.append((block, removed, kept, accuracy(net, batches)))
    finally:
        lesion.set_removed_paths(net, {})
    return rows


def parse_bn_settings(text):
    """'20,100,all' -> [20, 100, None] (None: one whole epoch of training batches)."""
    settings = []
    for item in text.split(','):
        item = item.strip()
        if item == 'all':
            settings.append(None)
        elif item.isdigit() and int(item) > 0:
            settings.append(int(item))
        else:
            raise UserError('--bn-noise %s: give numbers of batches and/or all, e.g. '
                            '20,100,all' % text)
    return settings


def setting_name(setting):
    return 'all' if setting is None else str(setting)


def noise_summary(rows):
    """[(setting, component, draws, mean, population std, min, max)] of the accuracies in
    `rows` (setting, batches, batch images, draw, seed, component, depth, accuracy), in
    the order the settings and components first appear."""
    groups = {}
    for setting, *_, component, _, acc in rows:
        groups.setdefault((setting, component), []).append(acc)
    return [(setting, component, len(values), np.mean(values), np.std(values), min(values),
             max(values)) for (setting, component), values in groups.items()]
