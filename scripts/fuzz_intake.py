"""Coverage-guided fuzzing (atheris, libFuzzer) of what the intake does with a mail: sniff, read, parse.

For every input:

- the ARF parser's fast reading of a feedback report (``arf.fast_view``, ``parsers/fastmime.py``) must give what
  the standard library's reading gives, or decline (``tests.parsers.test_arf_fastpath.assert_same``);
- every parser that recognises the input must parse it to events and issues or raise ParseError, never anything
  else (the intake would quarantine it as a crash).

Run: ``.venv/bin/python scripts/fuzz_intake.py WORKDIR [SEED_DIR ...] -runs=N -max_total_time=S`` (libFuzzer's
options). New inputs go to WORKDIR only; the seed directories (the shared corpus, the golden files) are read.
A failing input is written as ``crash-*`` beside ``-artifact_prefix``; keep it under
``tests/parsers/fuzz_regressions/<parser>/`` as ``NAME.bin`` so that the test suite replays it.
``tests/parsers/test_fuzz_intake.py`` runs this for a bounded time in CI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.parsers, for assert_same

with atheris.instrument_imports(include=["abusedesk"]):
    from tests.parsers.mailsupport import make_report
    from tests.parsers.test_arf_fastpath import assert_same

    from abusedesk.domain.errors import ParseError
    from abusedesk.domain.records import Event, ParseIssue
    from abusedesk.plugins import load_parsers

PARSERS = load_parsers()


def one_input(data: bytes) -> None:
    assert_same(data)
    report = make_report(data)
    for parser in PARSERS:
        try:
            if not parser.recognises(report):
                continue
            for item in parser.parse(report):
                assert isinstance(item, Event | ParseIssue), item
        except ParseError:
            pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
