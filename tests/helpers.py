"""What several test modules share: the one-line-error check, real Fashion-MNIST slices."""
import errno
import os

FASHION = '/usr/share/datasets/fashion-mnist'


def assert_one_line_error(proc, *words):
    """Bad input: exit code 2, one `error: ...` line on stderr naming `words`, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert 'Traceback' not in proc.stderr + proc.stdout
    for word in words:
        assert word in lines[0], lines[0]


def assert_error_after_progress(proc, *words):
    """As assert_one_line_error, for a long job whose progress bar came first on stderr:
    the error is its last line, and the only one besides the progress bar's."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.replace('\r', '\n').splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith('error: ')]
    assert errors == [lines[-1]], proc.stderr
    assert all('img/s' in line for line in lines[:-1]), proc.stderr
    assert 'Traceback' not in proc.stderr + proc.stdout
    for word in words:
        assert word in lines[-1], lines[-1]


def write_fashion_slice(out, train, test):
    """Records of the first `train` training and `test` test images of the official files
    (`make setup` installs Debian's dataset-fashion-mnist; without it this fails, never
    skips)."""
    from data.fashion_mnist import read_idx
    from data.synthetic import write_record_dataset
    assert os.path.exists(os.path.join(FASHION, 'train-images-idx3-ubyte.gz')), (
        'Fashion-MNIST is missing: run `make setup` (installs dataset-fashion-mnist)')

    def first(prefix, count):
        images, _ = read_idx(os.path.join(FASHION, prefix + '-images-idx3-ubyte.gz'), 3)
        labels, _ = read_idx(os.path.join(FASHION, prefix + '-labels-idx1-ubyte.gz'), 1)
        return images[:count], labels[:count]
    write_record_dataset(out, 'fashion-mnist', first('train', train), first('t10k', test))
    return out


def fill(folder, leave=0):
    """Fill the file system of `folder` (small_disk), then free `leave` bytes."""
    path = os.path.join(str(folder), 'filler')
    with open(path, 'wb') as handle:
        try:
            while True:
                handle.write(b'\0' * 65536)
                handle.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    os.truncate(path, max(0, os.path.getsize(path) - leave))
