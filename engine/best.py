"""--save-best: `<prefix>-best.params` and `<prefix>-best.state`, the epoch with the best test
accuracy so far, written beside the periodic checkpoints (atomically, as they are) and never
deleted. Its state carries `best_epoch` (epochs done) and `best_val_acc`; a resumed run reads
them back so that only a better epoch replaces it.
"""
import os

from engine import checkpoint

BEST = 'best'


class BestCheckpoint:
    def __init__(self, prefix, logger):
        self.prefix, self.logger = prefix, logger
        self.best_val_acc = None
        if os.path.exists(checkpoint.state_file(prefix, BEST)):
            self.best_val_acc = checkpoint.read_state(prefix, BEST).get('best_val_acc')

    def update(self, done, val_acc, net, trainer, meta, averages=None):
        """Save when the epoch (`done` epochs) beats every earlier one (with its --ema
        weights, when given); True if saved."""
        if self.best_val_acc is not None and not val_acc > self.best_val_acc:
            return False
        self.best_val_acc = val_acc
        meta = dict(meta, best_epoch=done, best_val_acc=val_acc)
        checkpoint.save_checkpoint(self.prefix, done, net, trainer, meta, name=BEST,
                                   averages=averages)
        self.logger.info('Saved best checkpoint (test accuracy %f after %d epochs) to "%s"',
                         val_acc, done, checkpoint.params_file(self.prefix, BEST))
        return True
