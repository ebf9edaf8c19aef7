"""Small byte readers shared by the hand-written provider decoders."""

from __future__ import annotations


class WireError(ValueError):
    """A payload does not match the layout its decoder expects."""


def utf16z(view: memoryview | bytes, pos: int) -> tuple[str, int]:
    """Read a NUL-terminated UTF-16LE string at ``pos``; return it and the position after the NUL.

    A string that runs to the end of the payload without a NUL is accepted: pktmon writes its
    last string field that way in some builds (event 73 on 22621).
    """
    if pos > len(view):
        raise WireError("string starts past the end of the payload")
    if isinstance(view, bytes):  # searched in place: no copy of the rest of the payload
        end = pos
        while True:
            end = view.find(b"\x00\x00", end)
            if end < 0:
                if (len(view) - pos) % 2:
                    raise WireError("unterminated UTF-16 string of odd length")
                return view[pos:].decode("utf-16-le", "replace"), len(view)
            if (end - pos) % 2 == 0:
                return view[pos:end].decode("utf-16-le", "replace"), end + 2
            end += 1
    raw = bytes(view[pos:])
    end = 0
    while True:
        end = raw.find(b"\x00\x00", end)
        if end < 0:
            if len(raw) % 2:
                raise WireError("unterminated UTF-16 string of odd length")
            return raw.decode("utf-16-le", "replace"), pos + len(raw)
        if end % 2 == 0:
            break
        end += 1
    return raw[:end].decode("utf-16-le", "replace"), pos + end + 2


def mac_text(raw: bytes) -> str:
    return "-".join(f"{b:02X}" for b in raw)
