"""Text for a terminal: what came from a trace, a host or a rule file is printed, never obeyed.

A component or switch name can hold ESC sequences (clear the screen, set the window title, an OSC 8
hyperlink that survives a pipe into ``less -R``), other C0/C1 controls, or Unicode bidi overrides that
make a line read backwards. Each is shown as a visible escape (``\\x1b``, ``\\u202e``) instead; line
breaks and tabs of our own layout stay.
"""

from __future__ import annotations

import re

# C0 controls but TAB and LF, DEL, C1 controls, and the bidi embedding/override/isolate characters.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

__all__ = ["for_terminal"]


def for_terminal(text: str) -> str:
    return _UNSAFE.sub(_visible, text)


def _visible(match: re.Match) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
