"""Which devices a run uses (engine/devices.py)."""
import mxnet as mx
import pytest

import train_model
from common.errors import UserError
from engine.devices import contexts_from_args, parse_gpu_list


def parse(*argv):
    return train_model.parse(list(argv))


def test_gpu_list_errors_are_user_errors():
    assert parse_gpu_list('0,1') == [0, 1]
    assert parse_gpu_list('') == []
    for bad in ('a,b', '0,0', '-1'):
        with pytest.raises(UserError):
            parse_gpu_list(bad)


def test_devices_without_gpus():
    assert mx.context.num_gpus() == 0  # the CI machine; this test documents CPU behaviour
    notices = []
    assert contexts_from_args(parse(), log=notices.append) == [mx.cpu(0)]
    assert 'no GPU' in notices[0]
    assert contexts_from_args(parse('--cpu', '--cpu-contexts', '2')) == [mx.cpu(0), mx.cpu(1)]
    assert contexts_from_args(parse('--gpus', '')) == [mx.cpu(0)]
    with pytest.raises(UserError, match='sees none.*--cpu.*mxnet-cu117'):
        contexts_from_args(parse('--gpus', '0,1'))
