"""Message ids the rules engine can tell apart.

durable_rules 2.0.28 identifies a message inside a session (sid) by the 32-bit FNV-1a hash of
its id string only, never by the string itself: two different ids with the same hash count as the
same message (the second assert is refused, a retract may remove the other fact). The allocator
below hands out ids whose hashes are unique within one sid, so that check becomes exact.
"""

from __future__ import annotations

FNV32_OFFSET_BASIS = 0x811C9DC5
FNV32_PRIME = 0x01000193


def fnv1a32(text: str | bytes) -> int:
    """32-bit FNV-1a of ``text`` (UTF-8 for ``str``): for each octet, xor it in, then multiply."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    h = FNV32_OFFSET_BASIS
    for octet in data:
        h ^= octet
        h = (h * FNV32_PRIME) & 0xFFFFFFFF
    return h


class IdAllocator:
    """Ids for the facts of one session whose ``fnv1a32`` keys never collide.

    The keys the engine itself uses in the session are taken from the start: the state fact
    ``sid-<sid>`` and the timer message ``$pulse``.
    """

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self._used: set[int] = {fnv1a32(f"sid-{sid}"), fnv1a32("$pulse")}

    def allocate(self, preferred: str) -> str:
        """Return ``preferred`` if its key is free, else the first free ``preferred~N``."""
        candidate, n = preferred, 0
        while fnv1a32(candidate) in self._used:
            n += 1
            candidate = f"{preferred}~{n}"
        self._used.add(fnv1a32(candidate))
        return candidate

    def __len__(self) -> int:
        return len(self._used)
