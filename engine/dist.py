"""Summing gradients and metrics over the workers of a dist kvstore, safely on MXNet 1.9.1.

Why not the Gluon Trainer's own kvstore path: on 1.9.1 with CPU arrays it races. A push
of a single CPU array sends the array itself instead of a copy, while the store waits on
(and a later pull orders itself after) its copy buffer. So a pull can overtake its own
push, and the pull of another worker can reach the server before rank 0's `init` push:
seen here as workers drifting apart and as "Check failed: !stored.is_none(): init 24
first". Here every push is waited for (its completion is the server's answer, which in
dist_sync comes once every worker has pushed) before anything is pulled.

The server keeps no optimizer: it sums. Each worker updates its own weights with the
summed gradients, so learning-rate changes need nothing on the servers, and each worker
can save its optimizer states.
"""
import mxnet as mx
import numpy as np

from common.errors import UserError
from engine.meter import SUM_FIELDS


class DistSync:
    """Keys 0..P-1: the learnable parameters; P and P+1: training and test metric sums;
    P+2: the epoch each worker starts at; P+3: the test sums of the --ema weights."""

    def __init__(self, kv, net, start_epoch=0):
        self.kv = kv
        self.params = [p for p in net.collect_params().values() if p.grad_req != 'null']
        keys = list(range(len(self.params)))
        self._check_same_start(len(keys) + 2, start_epoch)
        # Rank 0's weights go to the servers and every worker starts from them. Plain
        # copies: a weight a oneDNN convolution has used may sit in oneDNN's own layout,
        # which the kvstore cannot send.
        weights = [mx.nd.array(p.list_data()[0].asnumpy()) for p in self.params]
        kv.init(keys, weights)
        self.train_key, self.val_key, self.ema_key = len(keys), len(keys) + 1, len(keys) + 3
        kv.init([self.train_key, self.val_key, self.ema_key],
                [mx.nd.zeros(len(SUM_FIELDS))] * 3)
        self._settle()
        for key, weight in zip(keys, weights):
            kv.pull(key, out=weight)
        self._settle()
        for param, weight in zip(self.params, weights):
            param.set_data(weight)

    def _check_same_start(self, key, start_epoch):
        """--resume: a worker that sees an older checkpoint than the others (a snapshot
        folder that is not shared) would run other epochs and leave the job waiting. The
        sums of e and e*e over the workers show whether every e is the same."""
        value = mx.nd.array([start_epoch, start_epoch ** 2])
        self.kv.init(key, mx.nd.zeros(2))
        self._settle()
        self.kv.push(key, value)
        mx.nd.waitall()
        self.kv.pull(key, out=value)
        total, squares = value.asnumpy().tolist()
        if squares * self.kv.num_workers != total ** 2:
            raise UserError(
                'the workers would start at different epochs (worker %d at epoch %d): every '
                "machine must see rank 0's checkpoints; put --log-dir on a file system they "
                'all share' % (self.kv.rank, start_epoch))

    def _settle(self):
        """Every push of this worker answered, then every worker here."""
        mx.nd.waitall()
        self.kv._barrier()

    def allreduce_grads(self):
        """Replace each gradient (on every device) by its sum over devices and workers."""
        for key, param in enumerate(self.params):
            self.kv.push(key, param.list_grad(), priority=-key)
        mx.nd.waitall()
        for key, param in enumerate(self.params):
            self.kv.pull(key, out=param.list_grad(), priority=-key)

    def sum_metrics(self, key, sums):
        value = mx.nd.array([sums[field] for field in SUM_FIELDS])
        self.kv.push(key, value)
        mx.nd.waitall()
        self.kv.pull(key, out=value)
        return dict(zip(SUM_FIELDS, value.asnumpy().astype(np.float64).tolist()))
