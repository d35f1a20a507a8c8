"""The original's Nesterov SGD.

MXNet 1.9.1's NAG (the fused nag_mom_update) keeps a velocity already multiplied by the
learning rate, v = 0.9 v + lr g: after a learning-rate drop the weights go on moving at the
old rate for some ten batches (even a rate of 0 still moves them). The MXNet of 2016 that
the original trained with kept the momentum of the raw gradients and applied the current
rate to each step, so a drop acted at once:

    g = rescale * grad + wd * w
    m = momentum * m + g
    w = w - lr * (g + momentum * m)

This optimizer does exactly that, with NDArray operations.
"""
import mxnet as mx


@mx.optimizer.register
class OriginalNAG(mx.optimizer.Optimizer):
    def __init__(self, momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum

    def create_state(self, index, weight):
        return mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        step = grad * self.rescale_grad
        if self.clip_gradient is not None:
            step = mx.nd.clip(step, -self.clip_gradient, self.clip_gradient)
        step = step + wd * weight
        state[:] = self.momentum * state + step
        weight[:] = weight - lr * (step + self.momentum * state)
