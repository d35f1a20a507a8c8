"""A model-zoo entry (network/zoo.py) where the inference tools take a checkpoint:
`--pretrained NAME`. Nothing needs to be trained; the records, where a tool reads some, are
looked for where `python -m data.prepare <dataset>` writes them (data/<dataset>)."""
import os
from dataclasses import dataclass

from common.errors import UserError

OUTPUT_ROOT = os.path.join('snapshot', 'pretrained')   # outputs a tool writes by default


@dataclass
class Pretrained:
    entry: dict

    @property
    def name(self):
        return self.entry['name'].replace('/', '_')

    @property
    def prefix(self):
        """Where the tools' default outputs go (never beside the shipped weights)."""
        return os.path.join(OUTPUT_ROOT, self.entry['name'])

    @property
    def epoch(self):
        return self.entry['trained'].get('epochs', 0)

    @property
    def params_path(self):
        from network import zoo
        return os.path.join(zoo.ROOT, self.entry['file'])

    @property
    def flags(self):
        """The flags of the run that trained it, as far as inference needs them."""
        from data.datasets import DATASETS
        entry = self.entry
        spec = DATASETS[entry['dataset']]
        return dict(network=entry['network'], depth=entry['depth'],
                    widen_factor=entry['widen_factor'], num_classes=entry['num_classes'],
                    dataset=entry['dataset'], data_shape=entry['input_shape'][1],
                    aug_type=spec['aug_type'], data_dir=os.path.join('data', entry['dataset']),
                    train_dataset=spec['train_rec'], val_dataset=spec['val_rec'],
                    test_batch_size=entry['test_batch_size'], classes=entry['classes'])


def find_pretrained(name):
    """The entry `name` of the model zoo (one line naming the entries when there is none)."""
    from network import zoo
    try:
        entry = zoo.get_entry(name)
    except zoo.PretrainedError as err:
        raise UserError(str(err))
    if entry['dataset'] not in _datasets():
        raise UserError('pretrained %s was trained on %s, which this version does not know'
                        % (name, entry['dataset']))
    return Pretrained(entry)


def load_pretrained(pretrained, ctx):
    """The entry's network with its checked weights on `ctx`, not hybridized."""
    import network
    entry = pretrained.entry
    try:
        net = network.get_net(entry['network'], depth=entry['depth'],
                              widen_factor=entry['widen_factor'], pretrained=entry['name'])
    except network.PretrainedError as err:
        raise UserError(str(err))
    net.collect_params().reset_ctx(ctx)
    return net


def _datasets():
    from data.datasets import DATASETS
    return DATASETS
