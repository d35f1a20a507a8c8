"""The original's Nesterov update (engine/optim.py)."""
import mxnet as mx
import numpy as np

from engine.optim import OriginalNAG


def run(lrs, momentum=0.9, wd=1e-4, rescale=0.5):
    opt = OriginalNAG(learning_rate=lrs[0], momentum=momentum, wd=wd, rescale_grad=rescale)
    weight = mx.nd.array([1.0, -2.0, 0.5])
    state = opt.create_state(0, weight)
    grads = [np.array([0.3, -0.1, 0.2]) * (k + 1) for k in range(len(lrs))]
    for lr, grad in zip(lrs, grads):
        opt.set_learning_rate(lr)
        opt.update(0, weight, mx.nd.array(grad), state)
    return weight.asnumpy(), grads


def test_matches_the_formula_of_the_original():
    lrs = [0.1, 0.1, 0.01]
    got, grads = run(lrs)
    w, m = np.array([1.0, -2.0, 0.5]), np.zeros(3)
    for lr, grad in zip(lrs, grads):
        g = 0.5 * grad + 1e-4 * w
        m = 0.9 * m + g
        w = w - lr * (g + 0.9 * m)
    np.testing.assert_allclose(got, w, rtol=1e-6)


def test_a_learning_rate_drop_acts_at_once():
    before, _ = run([0.1, 0.1])
    after, _ = run([0.1, 0.1, 0.0, 0.0])
    np.testing.assert_array_equal(before, after)  # rate 0: the weights stay put


def test_optimizer_states_round_trip_through_the_trainer(tmp_path):
    net = mx.gluon.nn.Dense(2, in_units=3)
    net.initialize()
    trainer = mx.gluon.Trainer(net.collect_params(), OriginalNAG(learning_rate=0.1))
    with mx.autograd.record():
        loss = net(mx.nd.ones((4, 3))).sum()
    loss.backward()
    trainer.step(4)
    trainer.save_states(str(tmp_path / 's'))
    other = mx.gluon.Trainer(net.collect_params(), OriginalNAG(learning_rate=0.1))
    other.load_states(str(tmp_path / 's'))
    a = trainer._updaters[0].states
    b = other._updaters[0].states
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key].asnumpy(), b[key].asnumpy())
