"""Figures of a checkpoint on a record set: loss, top-1/top-5, per-class, confusion matrix.

The loss and accuracies are computed as the training log's validation lines are: cross-
entropy of the (ensemble-averaged) logits, over every image once.
"""
import numpy as np

from engine.flags import TOP5_MIN_CLASSES
from engine.meter import cross_entropy_sum


def figures(logits, labels, num_classes, log_batch):
    """Mean loss, top-1, top-5 (None under 5 classes), per-class accuracy, confusion.

    The loss is added up as the training log's is, batch by batch of `log_batch` (the
    run's test batch size): the same digits for the same logits.
    """
    n = len(labels)
    loss = 0.0
    for start in range(0, n, log_batch):
        loss += cross_entropy_sum(logits[start:start + log_batch],
                                  labels[start:start + log_batch])
    top5 = None
    if num_classes >= TOP5_MIN_CLASSES:
        best5 = np.argsort(-logits, axis=1)[:, :5]
        top5 = float((best5 == labels[:, None]).any(axis=1).mean())
    predicted = logits.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return dict(count=n, loss=float(loss / n), top1=float((predicted == labels).mean()),
                top5=top5, per_class=per_class.tolist(), confusion=confusion.tolist())


def original_subset(count, train_batch, test_batch):
    """Positions the 2016 code scored: the first `train_batch` images of every test batch
    (its executors were bound at the training batch size and never checked the input's)."""
    positions = np.arange(count)
    return positions[positions % test_batch < train_batch]


def parse_subset(text, flags):
    """'TRAIN,TEST' or 'run' (the run's --batch-size and --test-batch-size) -> two ints."""
    if text == 'run':
        return flags['batch_size'], flags['test_batch_size']
    try:
        train_batch, test_batch = (int(x) for x in text.split(','))
    except ValueError:
        return None
    return (train_batch, test_batch) if min(train_batch, test_batch) > 0 else None


def report_lines(result, class_names, subset=None):
    """The text report: headline figures, the log-style lines, per class, the confusion."""
    lines = ['%d images: loss %.6f, top-1 accuracy %.2f%% (error %.2f%%)%s' % (
        result['count'], result['loss'], 100 * result['top1'], 100 - 100 * result['top1'],
        '' if result['top5'] is None else ', top-5 accuracy %.2f%%' % (100 * result['top5']))]
    lines += ['as the training log writes it:',
              '  Validation-cross-entropy=%f' % result['loss'],
              '  Validation-accuracy=%f' % result['top1']]
    if result['top5'] is not None:
        lines.append('  Validation-top_k_accuracy_5=%f' % result['top5'])
    if subset is not None:
        lines.append("the original's subset (the first %d of every %d test images): %d images, "
                     'top-1 accuracy %.2f%% (error %.2f%%)' % (
                         subset['train_batch'], subset['test_batch'], subset['count'],
                         100 * subset['top1'], 100 - 100 * subset['top1']))
    width = max(len(name) for name in class_names)
    lines.append('per-class accuracy:')
    for label, (name, acc) in enumerate(zip(class_names, result['per_class'])):
        lines.append('  %3d %-*s %6.2f%%  (%d images)' % (
            label, width, name, 100 * acc, sum(result['confusion'][label])))
    lines.append('confusion matrix (rows: true class, columns: predicted class):')
    cell = max(4, len(str(max(max(row) for row in result['confusion']))) + 1)
    lines.append('     ' + ''.join('%*d' % (cell, j) for j in range(len(class_names))))
    for label, row in enumerate(result['confusion']):
        lines.append('  %3d' % label + ''.join('%*d' % (cell, v) for v in row))
    return lines


def save_confusion_png(result, class_names, title, path):
    """The confusion matrix as a picture, rows normalised (a cell = share of the true class)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    counts = np.array(result['confusion'], np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(shares, cmap='Blues', vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label='share of the true class')
    if len(class_names) <= 30:
        ticks = np.arange(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=90)
        ax.set_yticks(ticks, class_names)
        for (i, j), value in np.ndenumerate(counts):
            if value:
                ax.text(j, i, '%d' % value, ha='center', va='center', fontsize=7,
                        color='white' if shares[i, j] > 0.5 else 'black')
    ax.set_xlabel('predicted class')
    ax.set_ylabel('true class')
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format='png')   # path may be a temporary name
    plt.close(fig)
