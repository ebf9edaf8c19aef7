"""Seeded mutations of ETL bytes, by category: what damage a trace meets between a customer's host and us.

Used by the bounded fuzz test in the suite and by ``benchmarks/fuzz.py`` (the long run). Every mutant is
``(category, seed, bytes)``: the same seed gives the same bytes, so a crash found is a regression test.
The buffer layout (72-byte WMI_BUFFER_HEADER: BufferSize at 0, Offset at 48, BufferFlag at 52) is read
here on its own, not through wnvdiag's reader, so a reader bug cannot hide a mutant.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

BUFFER_HEADER = 72
FLAG_COMPRESSED = 0x40
# (offset, width) of every WMI_BUFFER_HEADER field
HEADER_FIELDS = [(0, 4), (4, 4), (8, 4), (12, 4), (16, 8), (24, 8), (32, 8), (40, 2), (42, 2), (44, 4), (48, 4),
                 (52, 2), (54, 2), (56, 8), (64, 8)]


def buffers(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each buffer, walking BufferSize; stops at the first impossible size."""
    out, off = [], 0
    while off + BUFFER_HEADER <= len(data):
        size = struct.unpack_from("<I", data, off)[0]
        if size < BUFFER_HEADER or off + size > len(data):
            break
        out.append((off, size))
        off += size
    return out


def _interesting_int(rng: random.Random, width: int) -> int:
    top = (1 << (8 * width)) - 1
    return rng.choice([0, 1, top, top >> 1, (top >> 1) + 1, rng.randrange(top + 1), rng.randrange(256),
                       rng.randrange(1 << 20)]) & top


def bit_flips(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 16)):
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)


def byte_runs(data: bytearray, rng: random.Random) -> None:
    length = rng.choice([1, 4, 8, 64, 256, 4096])
    pos = rng.randrange(len(data))
    data[pos:pos + length] = bytes([rng.choice([0x00, 0xFF])]) * len(data[pos:pos + length])


def header_integers(data: bytearray, rng: random.Random) -> None:
    spans = buffers(bytes(data)) or [(0, len(data))]
    for _ in range(rng.randint(1, 3)):
        start, _ = rng.choice(spans)
        offset, width = rng.choice(HEADER_FIELDS)
        if start + offset + width <= len(data):
            data[start + offset:start + offset + width] = _interesting_int(rng, width).to_bytes(width, "little")


def int64s(data: bytearray, rng: random.Random) -> None:
    """A random 64-bit value at an 8-aligned offset: timestamps, pointers, sizes in record headers."""
    pos = rng.randrange(0, max(1, len(data) - 8)) & ~7
    data[pos:pos + 8] = rng.choice([2 ** 62, -1 & (2 ** 64 - 1), 2 ** 63, rng.randrange(2 ** 64)]).to_bytes(8, "little")


def truncation(data: bytearray, rng: random.Random) -> None:
    del data[rng.randrange(1, len(data)):]


def buffer_sizes(data: bytearray, rng: random.Random) -> None:
    spans = buffers(bytes(data))
    if not spans:
        return bit_flips(data, rng)
    start, size = rng.choice(spans)
    new = rng.choice([0, BUFFER_HEADER - 1, BUFFER_HEADER, size - 1, size + 1, size * 2, 2 ** 32 - 1,
                      rng.randrange(2 ** 32)])
    struct.pack_into("<I", data, start, new)


def buffer_duplicated(data: bytearray, rng: random.Random) -> None:
    spans = buffers(bytes(data))
    if not spans:
        return bit_flips(data, rng)
    start, size = rng.choice(spans)
    data[start + size:start + size] = data[start:start + size]


def buffer_removed(data: bytearray, rng: random.Random) -> None:
    spans = buffers(bytes(data))
    if len(spans) < 2:
        return truncation(data, rng)
    start, size = rng.choice(spans[1:])
    del data[start:start + size]


def compressed_flag(data: bytearray, rng: random.Random) -> None:
    spans = buffers(bytes(data))
    if not spans:
        return bit_flips(data, rng)
    start, _ = rng.choice(spans)
    flags = struct.unpack_from("<H", data, start + 52)[0]
    struct.pack_into("<H", data, start + 52, flags ^ FLAG_COMPRESSED)


def compressed_garbage(data: bytearray, rng: random.Random) -> None:
    spans = [(s, n) for s, n in buffers(bytes(data))
             if struct.unpack_from("<H", data, s + 52)[0] & FLAG_COMPRESSED and n > BUFFER_HEADER + 16]
    if not spans:
        spans = [(s, n) for s, n in buffers(bytes(data)) if n > BUFFER_HEADER + 16]
    if not spans:
        return bit_flips(data, rng)
    start, size = rng.choice(spans)
    pos = rng.randrange(start + BUFFER_HEADER, start + size)
    length = min(rng.choice([1, 16, 256]), start + size - pos)
    data[pos:pos + length] = rng.randbytes(length)


CATEGORIES = {
    "bit-flips": bit_flips, "byte-runs": byte_runs, "header-integers": header_integers, "int64": int64s,
    "truncation": truncation, "buffer-size": buffer_sizes, "buffer-duplicated": buffer_duplicated,
    "buffer-removed": buffer_removed, "compressed-flag": compressed_flag, "compressed-garbage": compressed_garbage,
}


def mutant(original: bytes, category: str, seed: int) -> bytes:
    rng = random.Random(f"{category}:{seed}")
    data = bytearray(original)
    CATEGORIES[category](data, rng)
    return bytes(data)


def mutants(original: bytes, per_category: int, first_seed: int = 0) -> Iterator[tuple[str, int, bytes]]:
    for seed in range(first_seed, first_seed + per_category):
        for category in CATEGORIES:
            yield category, seed, mutant(original, category, seed)
