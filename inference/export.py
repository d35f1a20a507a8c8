"""Export a checkpoint as MXNet symbol + params and ONNX, and check both (tools/export.py)."""
import os

from common.errors import ArgumentParser, UserError
from inference import cli


def build_parser():
    parser = ArgumentParser(
        prog='tools/export.py',
        description="Export a checkpoint as MXNet's symbol JSON + params (for "
                    "SymbolBlock.imports and the C/C++ predict API) and as ONNX (any batch "
                    "size), then run both against the checkpoint and print the largest "
                    "difference.")
    cli.add_checkpoint_args(parser)
    parser.add_argument('--out-dir', default=None,
                        help="where the files go; default <the run's weights folder>/export")
    parser.add_argument('--no-onnx', action='store_true', help='MXNet files only')
    return parser


def export_paths(checkpoint, out_dir):
    """Base names of the exported files; never the checkpoint's own files."""
    out_dir = out_dir or os.path.join(os.path.dirname(checkpoint.prefix), 'export')
    base = os.path.join(out_dir, os.path.basename(checkpoint.prefix))
    if os.path.abspath('%s-%04d.params' % (base, checkpoint.epoch)) == \
            os.path.abspath(checkpoint.params_path):
        raise UserError('--out-dir %s holds the checkpoint itself; exporting there would '
                        'replace it: choose another folder' % out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise UserError('cannot create %s (%s)' % (out_dir, err.strerror))
    return base


def write_checked_exports(net, shape, base, epoch, onnx, description):
    """The exported files (symbol, params, onnx, and `description` as JSON) at `base`,
    checked against `net`, and the largest differences; all or none of them written
    (exporting.write_staged)."""
    import json

    from inference.exported import description_path
    from inference.exporting import check_exports, export_mxnet, export_onnx, write_staged

    def produce(staging):
        staged = os.path.join(staging, os.path.basename(base))
        symbol, params = export_mxnet(net, shape, staged, epoch)
        files = dict(symbol=symbol, params=params, description=description_path(staged))
        with open(files['description'], 'w') as handle:
            json.dump(description, handle, indent=1, sort_keys=True)
        if onnx:
            files['onnx'] = export_onnx(symbol, params, shape, '%s-%04d.onnx' % (staged, epoch))
        return files, check_exports(net, files, shape)
    return write_staged(os.path.dirname(base), produce)


def main(argv=None):
    args = build_parser().parse_args(argv)
    cli.prepare_mxnet()
    checkpoint = cli.checkpoint_of(args)
    from inference.model import input_shape, load_net
    shape = input_shape(checkpoint.flags)
    base = export_paths(checkpoint, args.out_dir)
    net = load_net(checkpoint)
    from inference.exported import describe, file_sha256
    description = describe(checkpoint.flags, 'fp32', dict(
        kind='checkpoint', path=checkpoint.params_path,
        sha256=file_sha256(checkpoint.params_path)))
    files, differences = write_checked_exports(net, shape, base, checkpoint.epoch,
                                               onnx=not args.no_onnx, description=description)
    print('MXNet:  %s, %s (described in %s)' % (files['symbol'], files['params'],
                                                files['description']))
    if 'onnx' in files:
        print('ONNX:   %s (checked by onnx.checker; input "data" of shape N x %s)'
              % (files['onnx'], ' x '.join(map(str, shape))))
    for name, value in differences.items():
        print('largest difference to the checkpoint on a batch of 8: %-5s %.3g'
              % (name, value))
    return 0
