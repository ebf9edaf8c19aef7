"""LZXpress "Plain LZ77" compression (MS-XCA §2.3), the format of ETL buffers flagged 0x40.

The compressed stream is a sequence of 32-bit little-endian flag words, each followed by the 32
symbols it describes, most significant bit first: a 0 bit is one literal byte, a 1 bit a 16-bit
match token ``(offset - 1) << 3 | min(length - 3, 7)``. Longer matches continue in a half byte
(shared by two consecutive long matches: low nibble first, high nibble for the next one), then a
byte, then a 16-bit or 32-bit length. Offsets reach 8192 bytes back. When the input ends, the flag
bits of the symbols that do not exist are set to 1, as Windows does, so a decoder that reads one
more flag finds a "match" with no input left and stops.

The match finder is greedy with one candidate per 4-byte prefix (the latest occurrence), and
measures a match by comparing slices of growing then halving length, so the inner loop runs in C.
ETW records repeat most of their header from one record to the next, which is what it finds.

*Holes* support cheap variation of a compressed buffer (see ``diag.synth.bulk``): byte ranges that
are emitted as literals, never used as match sources, and never split by a flag word, so that the
compressed bytes of a hole are the hole's bytes, contiguous, at a known offset of the output.
Patching them there changes the decompressed bytes at the same place and nothing else.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

MIN_MATCH = 3
MAX_OFFSET = 8192
# MS-XCA allows matches up to 2**32 bytes, but libfwnt (the reader's decompressor) rejects a
# length above 32771 ("tuple size value out of bounds"); longer runs become several matches.
MAX_MATCH = 32768
_KEY = 4  # bytes hashed to find a candidate: a 3-byte match saves too little to look for
_GROUP = 32  # symbols per flag word
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_LONG_MATCH_INDEXED = 8  # positions of a long match's tail put in the candidate table


@dataclass(frozen=True, slots=True)
class Compressed:
    """A compressed buffer and, for each hole of the input, where its bytes are in ``data``."""

    data: bytes
    hole_offsets: tuple[int, ...] = ()


def compress(data: bytes) -> bytes:
    """Compress ``data`` to an LZXpress Plain LZ77 stream."""
    return _serialize(data, _tokenize(data, _Holes(())))[0]


def compress_with_holes(data: bytes, holes: list[tuple[int, int]]) -> Compressed:
    """Compress ``data`` keeping each ``(start, length)`` hole as contiguous literals in the output.

    Holes must not overlap and must be at most 32 bytes long. Raises ``ValueError`` when a hole
    cannot be kept whole (it needs a match before it to move the flag-word boundary).
    """
    spans = _Holes(holes)
    tokens = _align_holes(_tokenize(data, spans), spans)
    out, literal_at = _serialize(data, tokens)
    return Compressed(out, tuple(literal_at[start] for start, _ in spans.spans))


# -- tokens: (start, length, offset); offset 0 is a run of literals ------------------------------


class _Holes:
    def __init__(self, holes: list[tuple[int, int]] | tuple) -> None:
        spans = sorted((int(s), int(n)) for s, n in holes)
        for (s1, n1), (s2, _n2) in zip(spans, spans[1:]):
            if s1 + n1 > s2:
                raise ValueError(f"holes at {s1} and {s2} overlap")
        if any(n < 1 or n > _GROUP for _, n in spans):
            raise ValueError("holes must be 1 to 32 bytes long")
        self.spans = spans
        self.starts = [s for s, _ in spans]
        self.ends = [s + n for s, n in spans]

    def room(self, pos: int) -> int:
        """Bytes from ``pos`` to the first hole byte at or after it (0 inside a hole)."""
        k = bisect.bisect_right(self.ends, pos)
        if k == len(self.ends):
            return 1 << 62
        return max(0, self.starts[k] - pos)

    def end_of(self, pos: int) -> int:
        """The end of the hole that contains ``pos``."""
        return self.ends[bisect.bisect_right(self.ends, pos)]


def _match_length(data: bytes, src: int, dst: int, limit: int) -> int:
    """Length of the common prefix of ``data[src:]`` and ``data[dst:]``, at most ``limit``; the
    first ``_KEY`` bytes are known to match."""
    good = _KEY
    step = 16
    while good < limit:
        probe = min(good + step, limit)
        if data[src + good:src + probe] != data[dst + good:dst + probe]:
            bad = probe
            while bad - good > 1:
                mid = (good + bad) >> 1
                if data[src + good:src + mid] == data[dst + good:dst + mid]:
                    good = mid
                else:
                    bad = mid
            return good
        good = probe
        step <<= 1
    return limit


def _tokenize(data: bytes, holes: _Holes) -> list[tuple[int, int, int]]:
    n = len(data)
    table: dict[bytes, int] = {}
    tokens: list[tuple[int, int, int]] = []
    has_holes = bool(holes.spans)
    literal_from = 0
    i = 0
    last_key = n - _KEY
    while i <= last_key:
        if has_holes:
            target_room = holes.room(i)
            if target_room == 0:
                i = holes.end_of(i)
                continue
        key = data[i:i + _KEY]
        src = table.get(key)
        table[key] = i
        if src is None or i - src > MAX_OFFSET:
            i += 1
            continue
        limit = min(n - i, MAX_MATCH)
        if has_holes:
            limit = min(limit, target_room, holes.room(src))
            if limit < _KEY:
                i += 1
                continue
        length = _match_length(data, src, i, limit)
        if literal_from < i:
            tokens.append((literal_from, i - literal_from, 0))
        tokens.append((i, length, i - src))
        end = i + length
        for j in range(max(i + 1, end - _LONG_MATCH_INDEXED), min(end, last_key + 1)):
            table[data[j:j + _KEY]] = j
        i = literal_from = end
    if literal_from < n:
        tokens.append((literal_from, n - literal_from, 0))
    return tokens


def _align_holes(tokens: list[tuple[int, int, int]], holes: _Holes) -> list[tuple[int, int, int]]:
    """Make every hole start where its literals fit before the next flag word, by turning bytes
    of the closest earlier match into literals (each adds a symbol)."""
    out: list[tuple[int, int, int]] = []
    symbols = 0
    hole_index = 0
    spans = holes.spans
    for start, length, offset in tokens:
        if offset:
            out.append((start, length, offset))
            symbols += 1
            continue
        end = start + length
        while hole_index < len(spans) and spans[hole_index][0] < end:
            hole_start, hole_len = spans[hole_index]
            at = symbols + (hole_start - start)
            used = at % _GROUP
            if used + hole_len > _GROUP:
                symbols += _pad_before(out, _GROUP - used)
                continue
            hole_index += 1
        out.append((start, length, 0))
        symbols += length
    return out


def _pad_before(out: list[tuple[int, int, int]], need: int) -> int:
    """Add at least ``need`` symbols to ``out`` by splitting its last match; returns how many."""
    for k in range(len(out) - 1, -1, -1):
        start, length, offset = out[k]
        if not offset:
            continue
        if length - need >= MIN_MATCH:
            out[k:k + 1] = [(start, need, 0), (start + need, length - need, offset)]
            return need
        out[k] = (start, length, 0)
        return length - 1
    raise ValueError("a hole cannot be aligned: no match before it to split")


# -- the byte stream -------------------------------------------------------------------------


def _serialize(data: bytes, tokens: list[tuple[int, int, int]]) -> tuple[bytes, dict[int, int]]:
    """Write the tokens; also return where each literal input byte landed in the output."""
    out = bytearray()
    flag_at = -1
    flags = 0
    used = _GROUP
    nibble_at = -1
    literal_at: dict[int, int] = {}
    pack16, pack32 = _U16.pack, _U32.pack
    for start, length, offset in tokens:
        if not offset:
            pos = start
            remaining = length
            while remaining:
                if used == _GROUP:
                    if flag_at >= 0:
                        out[flag_at:flag_at + 4] = pack32(flags)
                    flag_at, flags, used = len(out), 0, 0
                    out += b"\0\0\0\0"
                take = min(remaining, _GROUP - used)
                literal_at[pos] = len(out)
                out += data[pos:pos + take]
                used += take
                pos += take
                remaining -= take
            continue
        if used == _GROUP:
            if flag_at >= 0:
                out[flag_at:flag_at + 4] = pack32(flags)
            flag_at, flags, used = len(out), 0, 0
            out += b"\0\0\0\0"
        flags |= 1 << (31 - used)
        used += 1
        code = length - MIN_MATCH
        if code < 7:
            out += pack16(((offset - 1) << 3) | code)
            continue
        out += pack16(((offset - 1) << 3) | 7)
        rest = code - 7
        half = min(rest, 15)
        if nibble_at < 0:
            nibble_at = len(out)
            out.append(half)
        else:
            out[nibble_at] |= half << 4
            nibble_at = -1
        if rest < 15:
            continue
        if rest - 15 < 255:
            out.append(rest - 15)
        elif code <= 0xFFFF:
            out.append(255)
            out += pack16(code)
        else:
            out.append(255)
            out += pack16(0) + pack32(code)
    if flag_at >= 0:
        flags |= (1 << (_GROUP - used)) - 1
        out[flag_at:flag_at + 4] = pack32(flags)
    return bytes(out), _LiteralIndex(literal_at)


class _LiteralIndex(dict):
    """Input position of a literal byte -> its output offset. Holds one entry per chunk of
    literals (a run cut at flag words); positions inside a chunk are computed on lookup."""

    def __init__(self, chunk_starts: dict[int, int]) -> None:
        super().__init__(chunk_starts)
        self._starts = sorted(chunk_starts)

    def __missing__(self, pos: int) -> int:
        k = bisect.bisect_right(self._starts, pos) - 1
        start = self._starts[k]
        return self[start] + (pos - start)
