"""Which devices to train on: --gpus / --cpu / --cpu-contexts into MXNet contexts."""
import mxnet as mx

from common.errors import UserError

GPU_WHEEL_HINT = ('GPU builds: pip install mxnet-cu117==1.9.1 (CUDA 11.7, up to sm_86); '
                  'H100/H200 need MXNet built from source with CUDA >= 11.8 and sm_90')


def parse_gpu_list(text):
    """'0,1' -> [0, 1]; '' -> []."""
    text = (text or '').strip()
    if not text:
        return []
    try:
        ids = [int(part) for part in text.split(',') if part.strip() != '']
    except ValueError:
        raise UserError('--gpus=%r is not a comma-separated list of GPU ids, e.g. --gpus=0,1'
                        % text)
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise UserError('--gpus=%r must list distinct non-negative GPU ids' % text)
    return ids


def contexts_from_args(args, log=print):
    """The list of contexts to train on.

    --cpu (or --gpus=''): the CPU, as --cpu-contexts contexts (several only for tests).
    --gpus=0,1: exactly those GPUs; an error when MXNet cannot see them.
    No --gpus: every GPU MXNet sees, else the CPU with a one-line notice.
    """
    num_gpus = mx.context.num_gpus()
    cpu = [mx.cpu(i) for i in range(max(1, args.cpu_contexts))]
    if args.cpu or (args.gpus is not None and not args.gpus.strip()):
        return cpu
    if args.gpus is None:
        if num_gpus == 0:
            log('notice: MXNet sees no GPU; training on the CPU (pass --cpu to silence this)')
            return cpu
        return [mx.gpu(i) for i in range(num_gpus)]
    wanted = parse_gpu_list(args.gpus)
    if num_gpus == 0:
        raise UserError('--gpus=%s asks for GPUs but this MXNet sees none; run on the CPU '
                        'with --cpu, or install a GPU build (%s)' % (args.gpus, GPU_WHEEL_HINT))
    missing = [i for i in wanted if i >= num_gpus]
    if missing:
        raise UserError('--gpus=%s asks for GPU %s but MXNet sees only %d GPU(s) (ids 0-%d)'
                        % (args.gpus, ','.join(map(str, missing)), num_gpus, num_gpus - 1))
    return [mx.gpu(i) for i in wanted]
