"""The one table of networks: canonical name -> NetSpec. Adding a family is one module in
network/ and one row in SPECS; the scripts, get_net, the aliases and the tests all read
this table.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from . import (cross, ensemble, fuse3, fuse6, half, plain, resnet, side, symbol_cross,
               symbol_resnet)
from .blocks import BN_MOMENTUM, IMAGENET_BN_MOMENTUM


@dataclass(frozen=True)
class NetSpec:
    """What a network is, needs and is called (like timm's default_cfgs).

    `factory` takes depth, widen_factor and num_classes (CIFAR-style networks), or only
    num_classes (networks with an `input_shape`, which have one fixed layout).
    `test_depths`: a small valid depth and a somewhat deeper one, for quick tests of a
    CIFAR-style network (the smallest its layout allows first).
    `bn_momentum`: the momentum of its BatchNorm running statistics in the original's
    final code (get_net's default; --bn-momentum overrides it).
    """
    factory: Callable
    num_classes: int = 10                            # default class count
    bn_momentum: float = BN_MOMENTUM                 # BatchNorm running-statistics momentum
    input_shape: Optional[Tuple[int, int, int]] = None   # (C, H, W) it needs; None: any
    paper_depth: Optional[int] = None                # fixed depth of the paper's name
    aliases: Tuple[str, ...] = ()                    # the paper's names for it
    test_depths: Tuple[int, ...] = ()

    @property
    def fixed_input(self):
        """True for the ImageNet networks: one input shape, no depth or widen factor."""
        return self.input_shape is not None


IMAGENET_INPUT = (3, 224, 224)

SPECS = {
    'plain': NetSpec(plain.plain, test_depths=(5, 11)),
    'resnet': NetSpec(resnet.resnet, test_depths=(8, 14)),
    'half': NetSpec(half.half, aliases=('dfn-il',), test_depths=(14, 26)),
    'side': NetSpec(side.side, aliases=('dfn-il-noid',), test_depths=(14, 26)),
    'cross': NetSpec(cross.cross, aliases=('dfn-mr', 'merge-and-run'), test_depths=(14, 26)),
    'fuse3': NetSpec(fuse3.fuse3, test_depths=(5, 11)),
    'fuse6': NetSpec(fuse6.fuse6, test_depths=(8, 14)),
    'ensemble': NetSpec(ensemble.ensemble, bn_momentum=ensemble.ENSEMBLE_BN_MOMENTUM,
                        test_depths=(5, 11)),
    'symbol_cross': NetSpec(symbol_cross.symbol_cross, num_classes=1000,
                            bn_momentum=IMAGENET_BN_MOMENTUM, input_shape=IMAGENET_INPUT,
                            paper_depth=50, aliases=('dfn-mr-50',)),
    'symbol_resnet': NetSpec(symbol_resnet.symbol_resnet, num_classes=1000,
                             bn_momentum=IMAGENET_BN_MOMENTUM, input_shape=IMAGENET_INPUT,
                             paper_depth=98, aliases=('resnet-98',)),
}
