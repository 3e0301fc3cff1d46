"""print(result) against metafor's print (tests/reference/print/*.txt, written by
tests/reference/generate_print_reference.R): lines compared token by token with whitespace collapsed (column alignment
is cosmetic); numbers are printed with 4 decimals, so two printed numbers may differ by one unit in the last place
when the value lies at a rounding boundary (e.g. 5.69866860 shown as 5.6986 by metafor): tolerance 1.5e-4.
Shared by the test files of every model family that prints (tests/core/test_printing.py,
tests/stats/test_binary.py, tests/stats/test_api.py).
"""

import json
import re

from conftest import REFERENCE_DIR

PRINTS = REFERENCE_DIR / "print"
DATA = json.loads((PRINTS / "data.json").read_text())  # the datasets the R script printed fits of
NUMBER = re.compile(r"[(]?([-+]?\d+\.\d+)[%),]*")


def lines(text):
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def same_token(ours, theirs):
    a, b = NUMBER.fullmatch(ours), NUMBER.fullmatch(theirs)
    if a and b:
        return abs(float(a.group(1)) - float(b.group(1))) <= 1.5e-4 and ours[0] == theirs[0]
    return ours == theirs


def assert_prints_like_metafor(result, case):
    ours, theirs = lines(str(result)), lines((PRINTS / f"{case}.txt").read_text())
    assert len(ours) == len(theirs), "\n".join(ours)
    for mine, reference in zip(ours, theirs, strict=True):
        a, b = mine.split(), reference.split()
        assert len(a) == len(b) and all(map(same_token, a, b)), f"\n ours:    {mine}\n metafor: {reference}"
