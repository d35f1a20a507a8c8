"""Assertions shared by the tests of the command-line scripts."""


def assert_one_line_error(proc, *words):
    """Bad input: exit code 2, one `error: ...` line on stderr naming `words`, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert 'Traceback' not in proc.stderr + proc.stdout
    for word in words:
        assert word in lines[0], lines[0]
