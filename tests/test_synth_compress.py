"""The LZXpress compressor, checked by two independent decompressors (libfwnt and dissect.util),
and the compressed buffers of a synthesized trace, parsed with plain struct."""

from __future__ import annotations

import os
import random
import struct

import pyfwnt
import pytest

from diag.synth.compress import compress, compress_with_holes

lzxpress = pytest.importorskip("dissect.util.compression.lzxpress")

HEADER = struct.Struct("<IIIiqqQHHIIHH")  # WMI_BUFFER_HEADER up to BufferType


def _inputs() -> dict[str, bytes]:
    rng = random.Random(7)
    record = bytes.fromhex("d8001300000000004c1c000004000000") + bytes(range(64))
    return {
        "empty": b"",
        "one byte": b"a",
        "three bytes": b"abc",
        "short repeat": b"abcd" * 3,
        "zeros beyond the longest match": bytes(100_000),
        "random": rng.randbytes(5000),
        "two symbols": bytes(rng.choice(b"ab") for _ in range(20_000)),
        "every byte": bytes(range(256)) * 300,
        "records with a counter": b"".join(record[:4] + i.to_bytes(4, "little") + record[8:] for i in range(2000)),
        "run after text": b"ab" * 5000 + bytes(40_000),
        "matches needing the half byte": b"".join(rng.randbytes(6) + b"X" * (10 + i % 40) for i in range(3000)),
    }


@pytest.mark.parametrize("name", list(_inputs()))
def test_both_decompressors_give_the_input_back(name):
    data = _inputs()[name]
    packed = compress(data)
    if data:
        assert pyfwnt.lzxpress_decompress(packed, len(data)) == data
    assert lzxpress.decompress(packed) == data


def test_repetitive_data_compresses_and_random_data_grows_by_flag_words_only():
    records = _inputs()["records with a counter"]
    assert len(compress(records)) < len(records) / 4
    noise = _inputs()["random"]
    # literals only: one 4-byte flag word per 32 bytes
    assert len(compress(noise)) <= len(noise) + 4 * ((len(noise) + 31) // 32)


def test_holes_stay_whole_and_can_be_rewritten_in_place():
    rng = random.Random(11)
    data = _inputs()["records with a counter"]
    holes = [(at, 8) for at in range(16, len(data) - 8, 84)]
    packed = compress_with_holes(data, holes)
    patched, expected = bytearray(packed.data), bytearray(data)
    for (start, length), at in zip(holes, packed.hole_offsets):
        assert packed.data[at:at + length] == data[start:start + length]
        value = rng.randbytes(length)
        patched[at:at + length] = value
        expected[start:start + length] = value
    assert pyfwnt.lzxpress_decompress(bytes(patched), len(data)) == bytes(expected)
    assert lzxpress.decompress(bytes(patched)) == bytes(expected)


def test_overlapping_holes_are_refused():
    with pytest.raises(ValueError):
        compress_with_holes(bytes(100), [(10, 8), (14, 8)])


def test_compressed_trace_buffers_are_laid_out_as_windows_writes_them(tmp_path):
    from diag.synth.generate import synthesize

    result = synthesize("vlan-mismatch", tmp_path / "t.etl", compressed=True)
    data = result.trace.read_bytes()
    offset, buffers = 0, 0
    while offset < len(data):
        size, saved, current, _ref, _ts, _seq, _clock, _cpu, _logger, _state, filled, flags, btype = \
            HEADER.unpack_from(data, offset)
        raw = data[offset + 72:offset + size]
        if buffers == 0:
            assert (size, flags, btype) == (1024, 0x1, 4)
        else:
            assert flags & 0x40 and btype == 0
            assert saved == filled and current == 0x1000000 + filled
            out_fwnt = pyfwnt.lzxpress_decompress(raw, filled - 72)
            out_dissect = lzxpress.decompress(raw)
            assert out_fwnt == out_dissect and len(out_fwnt) == filled - 72
            assert out_fwnt[2:4] in (b"\x13\xc0", b"\x14\xc0")  # the first record: an event or a classic header
        offset += size
        buffers += 1
    assert offset == len(data) and buffers == result.written.buffers


def test_compressing_is_deterministic():
    data = os.urandom(2000) * 5
    assert compress(data) == compress(data)
