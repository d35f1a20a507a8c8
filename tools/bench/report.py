"""The benchmark's parent process: starts the measurement processes in interleaved rounds,
reduces them to medians, ratios and shares of the peak, prints them and writes the JSON."""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from common.atomic import write_whole_text
from common.errors import UserError
from tools.bench import KINDS, lib as benchlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARK = os.path.join(ROOT, 'tools', 'benchmark.py')   # also each measurement process
TORCH_NETS = ('cross', 'resnet')
TORCH_KINDS = ('step', 'infer', 'int8')
PROFILED_KINDS = ('step', 'infer', 'fused', 'int8')
CALIB_BATCH_SIZE = 64
# oneDNN's verbose switch under the names MXNet 1.9.1's oneDNN versions read.
ONEDNN_VERBOSE = dict(DNNL_VERBOSE='1', MKLDNN_VERBOSE='1', ONEDNN_VERBOSE='1')
# The profile times each operator alone: the static graph otherwise runs segments of
# operators as one bulk, which the profiler lists under their joined names. It runs on the
# threaded engine: under NaiveEngine MXNet 1.9.1's profiler records every graph operator
# twice but imperative ones (the optimizer's) once (resnet d8: its 9 convolutions counted
# 17 times, 146 _mul_scalar once each), which skews the shares.
PROFILE_ENV = dict(ONEDNN_VERBOSE, MXNET_EXEC_BULK_EXEC_TRAIN='0',
                   MXNET_EXEC_BULK_EXEC_INFERENCE='0',
                   MXNET_ENGINE_TYPE='ThreadedEnginePerDevice')


def options_of(args):
    """The measurement settings every process gets, checked (bad ones: UserError)."""
    import network
    try:
        name = network.resolve_name(args.network)
    except ValueError as err:
        raise UserError(str(err))
    spec = network.spec_of(name)
    shape = spec.input_shape or (3, 32, 32)
    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.split(','))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise UserError('--shape must be C,H,W of positive integers, not %r' % args.shape)
    kinds = [k.strip() for k in args.only.split(',') if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise UserError('--only takes some of %s, not %r' % (', '.join(KINDS), args.only))
    for flag in ('batch_size', 'steps', 'rounds', 'loop_images', 'pipeline_images', 'top',
                 'gemm_size', 'calib_batches'):
        if getattr(args, flag) < 1:
            raise UserError('--%s must be at least 1' % flag.replace('_', '-'))
    if args.warmup < 0:
        raise UserError('--warmup must be at least 0')
    options = dict(network=name, depth=args.depth, widen_factor=args.widen_factor,
                   num_classes=args.num_classes or spec.num_classes, shape=list(shape),
                   batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                   loop_images=args.loop_images, gemm_size=args.gemm_size, kinds=kinds,
                   profile_kind=next((k for k in kinds if k in PROFILED_KINDS), 'step'),
                   calib_batches=args.calib_batches, calib_batch_size=CALIB_BATCH_SIZE,
                   calib_mode=args.calib_mode, keep_fp32=keep_fp32_of(args),
                   sum_fusion=sum_fusion_of(args))
    try:   # a bad depth or widen factor fails here, in one line, before any process
        network.get_net(name, depth=args.depth, widen_factor=args.widen_factor,
                        num_classes=options['num_classes'])
    except ValueError as err:
        raise UserError(str(err))
    if name in TORCH_NETS:   # the PyTorch reference builds the same blocks per group
        import importlib
        options['blocks'] = list(importlib.import_module('network.' + name).layout(args.depth))
    return options


def keep_fp32_of(args):
    """The layers the INT8 networks keep in fp32: --keep-fp32, or tools/quantize.py's."""
    from inference.quantize import DEFAULT_KEEP_FP32, keep_list
    return keep_list(DEFAULT_KEEP_FP32 if args.keep_fp32 is None else args.keep_fp32)


def sum_fusion_of(args):
    from inference.quantize import DEFAULT_SUM_FUSION
    return DEFAULT_SUM_FUSION if args.sum_fusion is None else args.sum_fusion


def run_worker(kind, options, torch=False, env=None):
    """(result dict, the process's stdout) of one measurement process."""
    command = [sys.executable, BENCHMARK, '--worker', kind, '--options', json.dumps(options)]
    if torch:
        command.append('--torch')
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))
    marked = [line for line in proc.stdout.splitlines()
              if line.startswith(benchlib.RESULT_PREFIX)]
    if proc.returncode != 0 or not marked:
        tail = (proc.stderr.strip() or proc.stdout.strip() or 'no output').splitlines()[-1]
        raise UserError('the %s%s measurement failed: %s'
                        % ('PyTorch ' if torch else '', kind, tail))
    return json.loads(marked[-1][len(benchlib.RESULT_PREFIX):]), proc.stdout


def torch_available():
    import importlib.util
    return importlib.util.find_spec('torch') is not None


def machine():
    """Where the figures come from: CPU model, cores, threads, engine."""
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as info:
            model = next(line.split(':', 1)[1].strip() for line in info
                         if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return dict(cpu=model, cores=os.cpu_count(), omp_threads=os.environ.get('OMP_NUM_THREADS'),
                engine=os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice'),
                load_average=os.getloadavg()[0])


# ---------------------------------------------------------------- the main benchmark

def skipped_kinds(options, compare):
    """{kind: why} of what this configuration cannot measure."""
    skipped = {}
    if tuple(options['shape']) not in benchlib.CIFAR_SHAPES:
        for kind in ('loop', 'eval'):
            if kind in options['kinds']:
                skipped[kind] = 'records only for %s' % ', '.join(
                    'x'.join(map(str, s)) for s in benchlib.CIFAR_SHAPES)
    if compare and not torch_available():
        skipped['torch'] = ('torch is not installed (pip install -r requirements-bench.txt to '
                            'compare)')
    elif compare and options['network'] not in TORCH_NETS:
        skipped['torch'] = 'a PyTorch reference exists for %s only' % ', '.join(TORCH_NETS)
    return skipped


def run_rounds(args, options, skipped):
    """{series: [result per round]}: every kind once per round, PyTorch right after MXNet."""
    series = {}
    kinds = [k for k in options['kinds'] if k not in skipped]
    for round_index in range(args.rounds):
        for kind in kinds:
            runs = [(kind, False)]
            if args.compare and 'torch' not in skipped and kind in TORCH_KINDS:
                runs.append((kind, True))
            for name, torch in runs:
                result, _ = run_worker(name, options, torch=torch)
                label = 'torch_' + name if torch else name
                series.setdefault(label, []).append(result)
                print('  round %d/%d  %-12s %9.2f img/s  peak RSS %6.0f MiB'
                      % (round_index + 1, args.rounds, label, result['img_s'],
                         result['peak_rss_mib']), flush=True)
    return series


def summarise(series, flops, peak):
    """Medians per series, GFLOP/s and share of the peak; ratios between series."""
    rows = {}
    for label, results in series.items():
        img_s = benchlib.median([r['img_s'] for r in results])
        training = label.endswith('step') or label == 'loop'
        gflops = img_s * flops * (3 if training else 1) / 1e9
        rows[label] = dict(img_s=img_s, runs=[r['img_s'] for r in results],
                           gflops=gflops, peak_share=gflops / peak['gflops'],
                           peak_rss_mib=max(r['peak_rss_mib'] for r in results))
    ratios = {}
    for a, b, name in (('loop', 'step', 'loop_over_step'), ('step', 'torch_step', 'step_vs_torch'),
                       ('infer', 'torch_infer', 'infer_vs_torch'),
                       ('fused', 'infer', 'fused_vs_infer'),
                       ('int8', 'torch_int8', 'int8_vs_torch_int8'),
                       ('torch_int8', 'torch_infer', 'torch_int8_vs_torch_infer')):
        if a in rows and b in rows:
            ratios[name] = rows[a]['img_s'] / rows[b]['img_s']
    fp32 = [rows[kind]['img_s'] for kind in ('infer', 'fused') if kind in rows]
    if 'int8' in rows and fp32:   # the goal: INT8 against the fastest fp32 path
        ratios['int8_vs_fastest_fp32'] = rows['int8']['img_s'] / max(fp32)
    return rows, ratios


def benchmark(args, options):
    skipped = skipped_kinds(options, args.compare)
    flops = benchlib.graph_flops(benchlib.build_net(options), options['shape'])
    print('%s d%d w%d, batch %d, input %s: %.3f GFLOP per image forward (%.3f training)'
          % (options['network'], options['depth'], options['widen_factor'],
             options['batch_size'], 'x'.join(map(str, options['shape'])), flops / 1e9,
             3 * flops / 1e9))
    if 'int8' in options['kinds']:
        print('int8: calibrated (%s) on %d seeded normal batches of %d images; kept in fp32: '
              '%s; convolution + sum fusion %s'
              % (options['calib_mode'], options['calib_batches'], options['calib_batch_size'],
                 ', '.join(options['keep_fp32']) or 'none', options['sum_fusion']))
    for what, why in skipped.items():
        print('skipped %s: %s' % (what, why))
    folder = tempfile.mkdtemp(prefix='benchmark-')
    try:
        if {'loop', 'eval'} & set(options['kinds']) - set(skipped):
            print('writing %d synthetic training records ...' % options['loop_images'])
            options['data_dir'] = benchlib.write_cifar_records(
                folder, options['shape'], options['loop_images'], options['batch_size'] * 2)
        peak, _ = run_worker('peak', options)
        series = run_rounds(args, options, skipped)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows, ratios = summarise(series, flops, peak)
    print_table(rows, ratios, peak)
    options.pop('data_dir', None)   # a temporary folder, gone now
    report = dict(machine=machine(), options=options, flops_per_image=flops,
                  training_flops_per_image=3 * flops, peak=peak, results=rows, ratios=ratios,
                  skipped=skipped)
    write_json(args.json, report)
    return 0


def print_table(rows, ratios, peak):
    print('fp32 peak %.1f GFLOP/s (%s)' % (peak['gflops'], peak['method']))
    print('%-12s %10s %10s %8s %10s' % ('', 'img/s', 'GFLOP/s', '% peak', 'RSS MiB'))
    for label, row in rows.items():
        print('%-12s %10.2f %10.1f %7.1f%% %10.0f' % (label, row['img_s'], row['gflops'],
                                                     100 * row['peak_share'],
                                                     row['peak_rss_mib']))
    for name, value in ratios.items():
        print('%-16s %.3fx' % (name, value))


def write_json(path, report):
    if path:
        write_whole_text(path, json.dumps(report, indent=1, sort_keys=True))
        print('figures written to %s' % path)


# ---------------------------------------------------------------- --profile

def profile(args, options):
    """The training step under MXNet's profiler, with oneDNN's verbose log on: the slowest
    operators, and how often BatchNorm backward ran on the reference kernel and how many
    layout reorders oneDNN executed (per step)."""
    result, stdout = run_worker('profile', options, env=PROFILE_ENV)
    onednn = benchlib.count_onednn_lines(stdout)
    steps = result['steps']
    operators = [row for row in result['operators'] if row['domain'] == 'operator']
    total = sum(row['total_ms'] for row in operators) or 1.0
    kind = options['profile_kind']
    print('%s d%d, batch %d: MXNet profiler over %d %s (%s threads, %s, operators unbulked)'
          % (options['network'], options['depth'], options['batch_size'], steps,
             'training steps' if kind == 'step' else 'inference passes (%s)' % kind,
             os.environ.get('OMP_NUM_THREADS'), PROFILE_ENV['MXNET_ENGINE_TYPE']))
    print('wall time %.1f ms per step; operator times summed: %.1f ms per step'
          % (result['wall_ms_per_step'], total / steps))
    print('%-40s %8s %12s %7s' % ('operator', 'per step', 'ms per step', 'share'))
    for row in operators[:args.top]:
        print('%-40s %8.0f %12.2f %6.1f%%' % (row['name'][:40], row['calls'] / steps,
                                            row['total_ms'] / steps,
                                            100 * row['total_ms'] / total))
    if onednn['by_kind']:
        logged = steps   # the counts cover the profiled steps alone
        print('oneDNN executions per step: %s' % ', '.join(
            '%s %.0f' % (kind, count / logged) for kind, count in sorted(onednn['by_kind'].items())))
        print('BatchNorm backward on the reference kernel: %.0f per step; reorders: %.0f per '
              'step' % (onednn['bn_backward_ref'] / logged, onednn['reorders'] / logged))
        slow = onednn['reference_kernels']
        print('reference (unoptimised) kernels per step: %s' % (', '.join(
            '%s %.0f' % (kind, count / logged) for kind, count in sorted(slow.items()))
            or 'none'))
    else:
        print('oneDNN printed no verbose log (this MXNet build ignores DNNL_VERBOSE)')
    write_json(args.json, dict(machine=machine(), options=options, operators=result['operators'],
                               onednn=onednn, peak_rss_mib=result['peak_rss_mib']))
    return 0


# ---------------------------------------------------------------- --pipeline

def thread_counts(text):
    try:
        counts = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError('--threads must be positive integers separated by commas, not %r'
                        % text)
    return counts


def pipeline(args, options):
    threads = thread_counts(args.threads)
    if args.pipeline == 'cifar':
        from tools.bench import iterator
        return iterator.main(['--count', str(args.pipeline_images), '--batch-size',
                                    str(args.batch_size), '--threads', str(threads[0])])
    folder = tempfile.mkdtemp(prefix='benchmark-pipeline-')
    try:
        print('writing %d ImageNet-like JPEG records (short side 480) ...'
              % args.pipeline_images)
        options = dict(options, data_dir=benchlib.write_imagenet_records(
            folder, args.pipeline_images), passes=2)
        results = []
        for count in threads:
            result, _ = run_worker('pipeline', dict(options, threads=count))
            results.append(result)
            print('%2d decoding thread(s): %8.1f img/s, %7.1f img/s per thread, peak RSS '
                  '%.0f MiB' % (count, result['img_s'], result['img_s_per_thread'],
                                result['peak_rss_mib']), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_json(args.json, dict(machine=machine(), batch_size=options['batch_size'],
                               images=args.pipeline_images, pipeline=results))
    return 0
