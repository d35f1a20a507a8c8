"""Names from the file system in the project's outputs, escaped by each format's rules.

A file name may hold bytes that are not UTF-8 (Python keeps them as surrogate escapes,
which cannot be printed or written as UTF-8), control characters (a newline, a terminal
escape), a leading `=` that a spreadsheet runs as a formula, or a `|` that splits a
Markdown table's cell. Every name or other text from outside goes through one of these
before it is printed or written.
"""
import re

_CONTROL = re.compile(r'[\x00-\x1f\x7f]')
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')


def encodable(text):
    """Text (of many lines) safe to print and to write as UTF-8: the bytes of a name that is
    not UTF-8 (held as surrogate escapes) shown as \\xNN."""
    try:
        return text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
    except UnicodeEncodeError:   # a lone surrogate of another origin (a log's own text)
        return text.encode('utf-8', 'backslashreplace').decode('utf-8')


def readable(name):
    """A name safe to print on one line: encodable, and its control characters (a newline,
    a terminal escape) shown as \\xNN."""
    return _CONTROL.sub(lambda m: '\\x%02x' % ord(m.group()), encodable(name))


def csv_cell(text):
    """A text cell of a CSV file: readable, and never a spreadsheet formula (a leading
    = + - @ gets a ' before it, as OWASP advises)."""
    text = readable(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def markdown_cell(text):
    """A cell of a Markdown table: readable, its | and \\ escaped."""
    return readable(text).replace('\\', '\\\\').replace('|', '\\|')
