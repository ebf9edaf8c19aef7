"""Import user Python rule files in a child: ``python -m diag.engine.pyloader``.

The child reads a pickled list of paths on stdin and, file by file, imports each, reads its META and
WHEN (``pyrules.document_of``) and writes one length-prefixed pickled answer on stdout at once. The
parent (``load_in_child``) takes the answers that came. If the child ends or runs out of time before
answering every file, the first file without an answer is the one that ended it: that file gets the
error, and a fresh child goes on with the rest. So one hostile file costs only itself.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from pathlib import Path
from typing import Any

from diag.engine.child import Limits, run
from diag.engine.source import Document, RuleFileError

# Importing a rule file takes well under a second; past this it hangs (a top-level loop) and is an error.
LOAD_LIMITS = Limits(timeout=20.0)
_SIZE = struct.Struct("<Q")


def load_in_child(paths: list[Path], limits: Limits | None = None) -> dict[Path, Document | RuleFileError]:
    """Each file's document, or the ``RuleFileError`` that says why it cannot be one."""
    limits = limits or LOAD_LIMITS
    results: dict[Path, Document | RuleFileError] = {}
    pending = [Path(p) for p in paths]
    while pending:
        outcome = run("diag.engine.pyloader", pickle.dumps([str(p) for p in pending]), limits)
        answers = _answers(outcome.stdout)
        for path, answer in zip(pending, answers):
            results[path] = answer
        pending = pending[len(answers):]
        if pending:  # the child stopped at this file
            culprit = pending.pop(0)
            results[culprit] = RuleFileError(f"importing it ended the loading process: it {outcome.describe(limits)}"
                                             f"{outcome.last_words()}; a rule file must only define META, WHEN "
                                             "and action")
    return results


def _answers(data: bytes) -> list[Document | RuleFileError]:
    out: list[Document | RuleFileError] = []
    at = 0
    while at + _SIZE.size <= len(data):
        (size,) = _SIZE.unpack_from(data, at)
        if at + _SIZE.size + size > len(data):
            break  # cut short: the child died while writing
        try:
            answer = pickle.loads(data[at + _SIZE.size:at + _SIZE.size + size])
        except Exception:  # noqa: BLE001 - garbled: treat as the end of what it said
            break
        out.append(_from_wire(answer))
        at += _SIZE.size + size
    return out


def _from_wire(answer: dict[str, Any]) -> Document | RuleFileError:
    if "error" in answer:
        return RuleFileError(answer["error"], tuple(answer["where"]), answer["line"], answer["column"])
    return Document(data=answer["data"], positions=answer["positions"], has_action=answer["has_action"])


def _answer(path: str) -> dict[str, Any]:
    from diag.engine.pyrules import document_of

    try:
        document = document_of(Path(path))
    except RuleFileError as exc:
        return {"error": exc.message, "where": list(exc.where), "line": exc.line, "column": exc.column}
    return {"data": document.data, "positions": document.positions, "has_action": document.has_action}


def main() -> None:
    from diag.engine.child import harden

    harden()
    result = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what a rule file prints must not corrupt the answers
    for path in pickle.load(sys.stdin.buffer):
        try:
            answer = pickle.dumps(_answer(path), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # noqa: BLE001 - e.g. META holding something that cannot be sent
            answer = pickle.dumps({"error": f"cannot be read: {type(exc).__name__}: {exc}", "where": [],
                                   "line": None, "column": None})
        result.write(_SIZE.pack(len(answer)) + answer)
        result.flush()
    result.close()
    os._exit(0)


if __name__ == "__main__":
    main()
