"""show_model.py: the pictures, the printed parameter count, the drawing rules, the errors.

These tests need Graphviz's `dot` on PATH (CI installs it): without it they fail, they are
not skipped.
"""
import os
import re
import struct
import subprocess
import sys

import mxnet as mx
import pytest

import network
import show_model
from helpers import assert_one_line_error, fill

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'show_model.py')
DEPTH = 26   # the depth of the original pictures; valid for every CIFAR-style network
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
LABEL = re.compile(r'^(Input|C00|C|R\d\d|L\d\d|FC|\+|\|\|)$')


def run(*args, env=None):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


def png_size(path):
    """(width, height) of a PNG file, after checking its signature, IHDR and IEND."""
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:8] == PNG_SIGNATURE, 'not a PNG: %r' % data[:8]
    length, kind, width, height = struct.unpack('>I4sII', data[8:24])
    assert kind == b'IHDR' and length == 13
    assert data[-8:-4] == b'IEND', 'truncated PNG'
    return width, height


def input_shape(name):
    return (1,) + (network.SPECS[name].input_shape or (3, 32, 32))


def graph_of(name, depth=DEPTH, **kwargs):
    return show_model.build_graph(show_model.trace(network.get_net(name, depth=depth,
                                                                  **kwargs)))


def inputs_of(graph):
    found = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        found[dst].append(src)
    return found


def labels(graph, prefix):
    return sorted(n['label'] for n in graph.nodes.values() if n['label'].startswith(prefix)
                  and n['kind'] == 'box')


# ---- every network draws, and the count printed is count_params's ----------------------

@pytest.mark.slow
@pytest.mark.parametrize('name', network.list_nets())
def test_draws_every_network(name, tmp_path):
    proc = run('--network=%s' % name, '--depth=%d' % DEPTH, '--out-dir', str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    stem = name if name in network.IMAGENET_NETS else '%s_d%d' % (name, DEPTH)
    path = os.path.join(str(tmp_path), stem + '.png')
    width, height = png_size(path)
    assert width >= 200 and height >= 1000, (width, height)

    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    match = re.match(r'^network parameters: (\d+\.\d{4})M \((\d{1,3}(?:,\d{3})*)\)$', lines[0])
    assert match, lines[0]
    expected = network.count_params(network.get_net(name, depth=DEPTH), input_shape(name))
    assert int(match.group(2).replace(',', '')) == expected
    assert match.group(1) == '%.4f' % (expected / 1e6)
    assert lines[1] == 'wrote %s' % path


@pytest.mark.slow
def test_prints_the_count_as_the_original(tmp_path):
    proc = run('--network=half', '--depth=26', '--out-dir', str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == 'network parameters: 0.3467M (346,650)'


@pytest.mark.slow
@pytest.mark.parametrize('fmt,magic', [('svg', b'<'), ('pdf', b'%PDF')])
def test_other_formats_and_widen_suffix(fmt, magic, tmp_path):
    out = os.path.join(str(tmp_path), 'new', 'folder')   # created when missing
    proc = run('--network=cross', '--depth=14', '--widen-factor=2', '--format', fmt,
               '--out-dir', out)
    assert proc.returncode == 0, proc.stderr
    path = os.path.join(out, 'cross_d14w2.' + fmt)
    with open(path, 'rb') as f:
        assert f.read().lstrip()[:len(magic)] == magic
    count = network.count_params(network.get_net('cross', depth=14, widen_factor=2),
                                 (1, 3, 32, 32))
    assert '(%s)' % '{:,}'.format(count) in proc.stdout


@pytest.mark.slow
def test_paper_names_are_aliases(tmp_path):
    proc = run('--network=DFN-IL', '--depth=14', '--out-dir', str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    png_size(os.path.join(str(tmp_path), 'half_d14.png'))


@pytest.mark.slow
def test_dataset_sets_the_class_count(tmp_path):
    proc = run('--network=plain', '--depth=5', '--dataset=cifar100', '--out-dir', str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    count = network.count_params(network.get_net('plain', num_classes=100, depth=5),
                                 (1, 3, 32, 32))
    assert '(%s)' % '{:,}'.format(count) in proc.stdout


# ---- what is drawn --------------------------------------------------------------------

def check_common(graph):
    """Only inputs, boxes, sums and concatenations; labels as the original; sane edges."""
    kinds = {n['kind'] for n in graph.nodes.values()}
    assert kinds <= {'input', 'box', 'sum', 'concat'}
    assert all(LABEL.match(n['label']) for n in graph.nodes.values()), graph.labels()
    ins = inputs_of(graph)
    for node_id, node in graph.nodes.items():
        if node['kind'] == 'input':
            assert ins[node_id] == []
        elif node['kind'] == 'box':
            assert len(ins[node_id]) == 1, (node['label'], ins[node_id])
        else:
            assert len(ins[node_id]) >= 2, (node['label'], ins[node_id])
    assert graph.count('input') == 1
    return ins


def test_cross_structure():
    graph = graph_of('cross')
    ins = check_common(graph)
    assert graph.count('box', 'C00') == 1
    assert labels(graph, 'R') == ['R%02d' % i for i in range(1, 25)]
    assert graph.count('box', 'C') - graph.count('box', 'C00') == 4
    assert graph.count('box', 'FC') == 1
    assert graph.count('box', 'L') == 0
    # per block the merged shortcut and one sum per stream; the last block one 3-way sum
    assert graph.count('sum') == 5 * 3 + 2
    assert graph.count('concat') == 0
    # the first merge sums the stem output twice (two identity shortcuts)
    stem = [n for n in graph.nodes if graph.nodes[n]['label'] == 'C00'][0]
    assert any(ins[n] == [stem, stem] for n in graph.nodes if graph.nodes[n]['kind'] == 'sum')
    # colours by group: the stem orange, R01-R08 g1, R09-R16 g2, R17-R24 g3, FC green
    color = {n['label']: n['color'] for n in graph.nodes.values() if n['kind'] == 'box'}
    assert color['C00'] == show_model.STEM_COLOR
    assert color['FC'] == show_model.FC_COLOR
    for i in range(1, 25):
        assert color['R%02d' % i] == show_model.GROUP_COLORS[(i - 1) // 8]
    # the picture shows no BatchNorm, ReLU, pooling or scalar multiply
    dot = show_model.to_dot(graph)
    assert not re.search(r'batchnorm|relu|pool|flatten|mulscalar|softmax', dot, re.I)


@pytest.mark.parametrize('name,shortcuts,sums,inputs_per_sum', [
    ('half', 2, 6, 3), ('side', 0, 6, 2), ('resnet', 2, 12, 2), ('fuse3', 3, 3, 2),
    ('fuse6', 3, 6, 2), ('plain', 0, 0, None)])
def test_single_path_structure(name, shortcuts, sums, inputs_per_sum):
    graph = graph_of(name)
    ins = check_common(graph)
    assert graph.count('box', 'C00') == 1
    assert labels(graph, 'R') == ['R%02d' % i for i in range(1, 25)]
    assert graph.count('box', 'C') - 1 == shortcuts
    assert graph.count('box', 'FC') == 1
    assert graph.count('sum') == sums
    for node_id, node in graph.nodes.items():
        if node['kind'] == 'sum':
            assert len(ins[node_id]) == inputs_per_sum
    assert graph.columns() == 1


def column_labels(graph, fc_id, ins):
    """Labels from the stem down to one classifier (each column is a chain)."""
    chain = []
    node = fc_id
    while graph.nodes[node]['kind'] != 'input':
        chain.append(graph.nodes[node]['label'])
        assert len(ins[node]) == 1
        node = ins[node][0]
    return chain[::-1]


def test_ensemble_structure():
    graph = graph_of('ensemble')
    ins = check_common(graph)
    assert graph.count('box', 'FC') == 8
    assert graph.count('box', 'C00') == 8
    assert graph.count('sum') == 0
    assert graph.columns() == 8
    # Right-path convs are numbered by their shared weight: R01-R08 in g1, R09-R16 in g2,
    # R17-R24 in g3; left convs are L01-L03 by group. Columns as in the original picture:
    # component k takes the right path in group g when bit g-1 of k is set.
    right = {g: ['R%02d' % (8 * (g - 1) + i) for i in range(1, 9)] for g in (1, 2, 3)}
    fcs = [n for n, node in graph.nodes.items() if node['label'] == 'FC']
    got = sorted(column_labels(graph, fc, ins) for fc in fcs)
    want = []
    for k in range(8):
        col = ['C00']
        for g in (1, 2, 3):
            col += right[g] if k >> (g - 1) & 1 else ['L%02d' % g]
        want.append(col + ['FC'])
    assert got == sorted(want)
    # drawing order of the columns follows the outputs: component k is column k
    order = [column_labels(graph, fc, ins) for fc in fcs]
    assert order == want


@pytest.mark.parametrize('name,sums,concats', [('symbol_resnet', 28, 0),
                                               ('symbol_cross', 36, 1)])
def test_imagenet_structure(name, sums, concats):
    graph = graph_of(name)
    check_common(graph)
    assert graph.count('box', 'C00') == 1
    assert labels(graph, 'R') == ['R%02d' % i for i in range(1, 97)]
    assert graph.count('box', 'C') == 1      # only the stem: no shortcut convolutions
    assert graph.count('sum') == sums
    assert graph.count('concat') == concats
    colors = {n['color'] for n in graph.nodes.values() if n['label'].startswith('R')}
    assert colors == set(show_model.GROUP_COLORS[:4])


def test_chained_additions_are_one_sum():
    data = mx.sym.var('data')

    def conv(name):
        return mx.sym.Convolution(data, kernel=(3, 3), num_filter=4, no_bias=True,
                                  name='net_g1_%s_conv0_fwd' % name)
    a, b = conv('res1_c1'), conv('res2_c1')
    total = mx.sym.relu(a + b + data)
    merged = show_model.build_graph(total.tojson())
    assert merged.count('sum') == 1
    assert sorted(len(v) for v in inputs_of(merged).values()) == [0, 1, 1, 3]
    separate = show_model.build_graph(total.tojson(), merge_sums=False)
    assert separate.count('sum') == 2


# ---- errors: one line, exit code 2 ----------------------------------------------------

@pytest.mark.slow
def test_missing_dot(tmp_path):
    empty = os.path.join(str(tmp_path), 'bin')
    os.mkdir(empty)
    env = dict(os.environ, PATH=empty)
    proc = run('--network=cross', '--depth=26', '--out-dir', str(tmp_path), env=env)
    assert_one_line_error(proc, 'dot', 'sudo apt-get install graphviz')
    assert proc.stdout == ''
    assert os.listdir(str(tmp_path)) == ['bin']


@pytest.mark.slow
def test_unknown_network(tmp_path):
    assert_one_line_error(run('--network=nosuch', '--out-dir', str(tmp_path)), 'nosuch', 'cross')
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.slow
def test_bad_depth(tmp_path):
    assert_one_line_error(run('--network=cross', '--depth=5', '--out-dir', str(tmp_path)), 'depth')


@pytest.mark.slow
def test_unwritable_out(tmp_path):
    blocker = os.path.join(str(tmp_path), 'file')
    with open(blocker, 'w') as f:
        f.write('not a folder')
    assert_one_line_error(run('--network=plain', '--depth=5', '--out-dir',
                              os.path.join(blocker, 'sub')), 'output folder')


@pytest.mark.slow
def test_help_names_the_file():
    proc = run('--help')
    assert proc.returncode == 0
    text = ' '.join(proc.stdout.split())
    for word in ('--network', '--depth', '--widen-factor', '--dataset', '--format', '--out-dir',
                 '<network>_d<depth>', 'w<widen>'):
        assert word in text, word


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_partial_picture(small_disk):
    fill(small_disk, leave=8192)
    proc = run('--network=cross', '--depth=26', '--out-dir', str(small_disk))
    assert_one_line_error(proc, 'could not write', 'cross_d26.png')
    assert os.listdir(str(small_disk)) == ['filler']
