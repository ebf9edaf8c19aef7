"""Layer 3 of decode: etl-parser's generated provider layouts, as a catalogue for the long tail.

etl-parser 1.0.1 ships ``etl.parsers.etw.*``: 794 generated modules, one per provider, each
declaring a ``construct`` ``Struct`` per (provider GUID, event id, version) with
``@declare(guid=..., event_id=..., version=...)`` on ``Etw`` subclasses. Its reader is broken, its
layouts are mostly good; this module uses the layouts and nothing else, without patching the package.

Public API (module level, on one shared ``Catalogue``; or make your own ``Catalogue()``):
    ``lookup(provider, event_id, version) -> Layout | None``   (``Layout.name`` is always None:
        etl-parser has no symbolic event names; ``Layout.class_name`` names the etl-parser class)
    ``decode(record) -> CatalogueResult | None``  (reason counted in ``stats()``)
    ``try_decode(record) -> CatalogueResult | Undecodable``  (the reason, for callers that want it)
    ``index() -> {guid: module}``, ``provider_name(guid)``, ``stats() -> CatalogueStats``

Loading
    Importing ``etl.parsers.etw.<Provider>`` the normal way first runs the package ``__init__``,
    which imports all 794 modules (1.7 s). So the index (GUID -> module) is built by reading only
    the docstring header (``GUID : ...``) of each module file (about 10-25 ms), and a provider's
    module is executed, on its own, the first time a record of that provider is seen (a few ms to
    ~100 ms for the largest): its ``from etl.parsers.etw.core import ...`` is served a private copy
    of ``core.py``, so nothing is registered in ``sys.modules`` under etl-parser's package names and
    the big ``__init__`` never runs.

Decoding
    ``construct`` is far too slow for this (about 100k events/s for eight integers, under 2k/s for
    three 200-character strings, whose ``RepeatUntil`` walks byte by byte; ``Struct.compile()``
    fails on those lambdas). Each layout is therefore translated once, per key, into a plan of
    ``struct`` unpacks: runs of fixed-size fields become one ``struct.Struct``; ``WString`` /
    ``CString`` / ``Guid`` / ``Sid`` / ``SystemTime`` (etl-parser's own objects, recognised by
    identity) and ``Bytes`` get a direct reader with the same meaning. A layout containing anything
    else is parsed by ``construct`` itself (etl-parser 1.0.1 never needs it; kept as the safe path).
    Measured: 170k (strings) to 340k (integers) events/s, against ~0.8M/s for merely reading the
    record header fields and payload.

    Values are JSON-friendly: ints, floats, ``str`` for strings, lower-case GUID strings, SIDs as
    ``S-1-...``, SYSTEMTIME as ``YYYY-MM-DDTHH:MM:SS.mmm``, binary as a lower-case hex string.

Version policy: exact version only, and the payload must be consumed exactly
    Only the layout declared for the record's exact (event id, version) is used. A record whose
    version has no layout is undecodable ("no layout for version"), even when a lower one exists.
    Measured on etl-parser's own catalogue (``Catalogue.version_prefix_survey()``): of the 713
    adjacent version pairs (555 events with more than one version), the lower layout is a leading
    prefix of the higher (same names and types, fields only appended) in 476 (99 identical, 377
    appended); in the other 237 (33%) the field list changes before its end, and in 202 of those
    (28% of all pairs) the types or their order change, so a lower-version decode would misread
    every later field. ``bytes_left`` cannot tell the cases apart: appended fields and a reordering
    both leave bytes over. No record in the sample traces ever needed a fallback (no "no layout
    for version" at all). Wrong decodes are worse than none: there is no fallback.

    The same reasoning applies to exact versions, because the layouts have bugs (below): a layout
    that leaves payload bytes unread is not trusted, and the event is undecodable ("layout leaves
    payload bytes unread"). On the samples, every such case was a real layout error (4 bytes
    more than Kernel-Network declares, dropped address fields, arrays read as one element, a wrong
    pktmon filter layout), never padding. ``bytes_left`` is therefore 0 in every result unless a caller builds
    ``Catalogue(allow_trailing=True)``.

Pointer size
    etl-parser types ``win:Pointer`` (and ``win:SizeT``) as ``Int64ul``, the type it also gives
    ``win:UInt64``/``HexInt64``/``FILETIME``: its layouts are 64-bit only and do not say which fields
    are pointers. For a 32-bit producer (``record.pointer_size == 4``) a layout with ``Int64ul``
    fields is tried both ways (all 64-bit, all 32-bit) and used only when exactly one reading
    consumes the payload exactly, and only when no variable-size field follows the first
    ``Int64ul`` (then the payload size alone decides; with strings after it, a wrong reading can
    come out exactly by chance, which was seen on a .NET runtime trace). Otherwise: undecodable.

Known etl-parser 1.0.1 layout bugs (from comparing its 35,971 layouts with dissect.etl's bundled
manifests for the 676 providers that have one, and from the sample traces)
    - ``win:Boolean`` (a 4-byte BOOL) is declared ``Int8ul``: at least 1,615 layouts; every later
      field shifts by 3 bytes (dissect's manifest compiler has the same bug; no sample has one).
    - ``win:Binary`` without a ``length`` attribute is silently dropped: 160 layouts, e.g.
      Kernel-Network IPv6 events 26-34, 58, 59 lose ``daddr``/``saddr``.
    - ``count=`` arrays are read as a single element: 242 layouts (e.g. .NET stack event 82).
    - strings with a ``length`` attribute become ``Bytes(length)``: raw bytes (hex here), and only
      half of a UTF-16 string if the length counts characters: 726 layouts.
    - ``Double`` is construct's big-endian ``Float64b``: 179 layouts (read little-endian here).
    - ``Bytes(lambda this: this.__binLength)`` is name-mangled inside the class body and raises
      AttributeError in construct: 782 layouts (resolved here to the ``__binLength`` field).
    - ``win:Pointer`` as ``Int64ul`` (above): 5,321 layouts are 64-bit only.
    - stale schemas: Kernel-Network's ``connid`` is declared UInt32 (by dissect's manifest too), yet
      every event of the Tx sample carries 4 bytes more than declared, consistent with a
      pointer-sized ``connid`` as in the kernel's MOF TcpIp classes.
    The consumption check caught every instance seen in the samples (dropped addresses, arrays,
    the 4 extra bytes, pktmon's filter event 100); a shifted decode that happens to end exactly on
    the payload end would not be caught, most plausibly a Boolean followed by strings.

Errors
    Nothing escapes ``decode``: a truncated payload, a missing string terminator, a bad SID, an
    error inside ``construct`` all become ``None`` with the reason counted in ``stats``.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import re
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

__all__ = [
    "Catalogue",
    "CatalogueResult",
    "CatalogueStats",
    "Layout",
    "Undecodable",
    "decode",
    "default_catalogue",
    "index",
    "lookup",
    "provider_name",
    "stats",
    "try_decode",
]

_GUID_LINE = re.compile(rb"GUID\s*:\s*([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})")
_NOT_PROVIDER_MODULES = frozenset({"__init__", "core"})
_HEADER_BYTES = 512

# Reasons an event is not decoded (the kinds counted in ``CatalogueStats.undecodable``).
NO_PROVIDER = "no catalogue module for provider"
NO_EVENT = "no layout for event id"
NO_VERSION = "no layout for version"
POINTER_32 = "32-bit producer: cannot tell which Int64ul fields are pointers"
TRUNCATED = "payload shorter than layout"
TRAILING = "layout leaves payload bytes unread"
BAD_VALUE = "payload does not fit layout"
LAYOUT_ERROR = "layout cannot be evaluated"
NOT_MANIFEST = "not an EVENT_HEADER record (classic/kernel events are keyed by opcode, not event id)"


# --------------------------------------------------------------------------------------------------
# results


@dataclass(slots=True)
class CatalogueResult:
    """A decoded event. ``fields`` keeps the layout's field order and names."""

    provider: str
    provider_name: str | None
    event_id: int
    version: int
    name: str | None  # etl-parser's modules carry no symbolic event names: always None for 1.0.1
    layout: str  # the etl-parser class, e.g. "Microsoft_Windows_PowerShell_7937_1"
    fields: dict[str, Any]
    bytes_left: int = 0


@dataclass(slots=True)
class Undecodable:
    """Why an event was not decoded: ``kind`` is one of the module's reason constants."""

    provider: str
    event_id: int
    version: int
    kind: str
    detail: str = ""

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


@dataclass(slots=True)
class CatalogueStats:
    decoded: Counter = field(default_factory=Counter)  # by provider
    undecodable: Counter = field(default_factory=Counter)  # by (provider, reason kind)
    samples: list[str] = field(default_factory=list)  # first few reasons in full, for reports
    max_samples: int = 20

    def note(self, miss: Undecodable) -> None:
        self.undecodable[(miss.provider, miss.kind)] += 1
        if len(self.samples) < self.max_samples:
            self.samples.append(f"{miss.provider} event {miss.event_id} v{miss.version}: {miss.reason}")

    def by_provider(self, provider: str) -> tuple[int, int]:
        """(decoded, undecodable) counts of one provider."""
        bad = sum(n for (p, _k), n in self.undecodable.items() if p == provider)
        return self.decoded[provider], bad


class _Fail(Exception):
    """Internal: a payload does not fit a plan (kind, detail)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# --------------------------------------------------------------------------------------------------
# loading etl-parser's modules one at a time


def _package_dir() -> Path | None:
    """etl.parsers.etw's folder, found without executing its 800-module ``__init__``."""
    try:
        spec = importlib.util.find_spec("etl.parsers.etw")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class _Loader:
    """Runs single etl-parser provider modules against a private copy of ``core.py``."""

    def __init__(self, package_dir: Path) -> None:
        self.dir = package_dir
        self._core = None
        self._builtins: dict[str, Any] | None = None

    def _ensure_core(self):
        if self._core is None:
            spec = importlib.util.spec_from_file_location(f"{__name__}._etl_core", self.dir / "core.py")
            core = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(core)
            real_import = builtins.__import__

            def _import(name, globals=None, locals=None, fromlist=(), level=0):
                if name == "etl.parsers.etw.core":
                    return core
                return real_import(name, globals, locals, fromlist, level)

            table = dict(vars(builtins))
            table["__import__"] = _import
            self._builtins = table
            self._core = core
        return self._core

    def load(self, module_name: str, guid: str) -> dict[int, dict[int, type]]:
        """Execute one provider module; return its ``{event_id: {version: Etw subclass}}``."""
        core = self._ensure_core()
        path = self.dir / f"{module_name}.py"
        code = compile(path.read_bytes(), str(path), "exec")
        namespace = {
            "__name__": f"{__name__}._etl.{module_name}",
            "__file__": str(path),
            "__builtins__": self._builtins,
        }
        exec(code, namespace)
        return core.__etw_factory__.get(core.guid(guid), {})


# --------------------------------------------------------------------------------------------------
# translating a construct Struct into a plan of struct unpacks


def _types():
    """The construct and etl-parser objects that layouts are built from, by identity."""
    import construct
    from etl import dtyp, utils

    # The fixed-size types etl-parser uses, as little-endian struct codes. construct's ``Double`` is
    # big-endian (Float64b); ETW data is little-endian, so it is read as "<d" on purpose.
    codes = {"Int8sl": "b", "Int8ul": "B", "Byte": "B", "Int16ul": "H", "Int16sl": "h", "Int32ul": "I",
             "Int32sl": "i", "Int64ul": "Q", "Int64sl": "q", "Float32l": "f", "Double": "d", "Float64l": "d"}
    fixed = {id(getattr(construct, name)): code for name, code in codes.items() if hasattr(construct, name)}
    return construct, {
        "fixed": fixed,
        "wstring": utils.WString,
        "cstring": utils.CString,
        "guid": utils.Guid,
        "sid": dtyp.Sid,
        "systemtime": utils.SystemTime,
    }


_WIDE_INTS = frozenset("Q")  # Int64ul: what etl-parser gives win:Pointer (Int64sl is always 8 bytes)


class _Ctx(dict):
    """``this`` for a Bytes length lambda: attribute access to earlier fields.

    etl-parser declares lambdas such as ``lambda this: this.__binLength`` inside class bodies, where
    Python mangles the name to ``_ClassName__binLength``: the mangled name is mapped back.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            pass
        if name.startswith("_") and "__" in name[1:]:
            tail = name[name.index("__", 1):]
            if tail in self:
                return self[tail]
        raise AttributeError(name)


# Plan steps: (kind, names-or-name, arg)
_FIXED, _WSTR, _CSTR, _GUID, _SID, _SYSTIME, _BYTES_N, _BYTES_FN = range(8)


def _translate(pattern, construct, types, narrow: bool = False) -> tuple[list[tuple], bool] | None:
    """A plan for ``pattern``, and whether it has 64-bit integer fields; None if not translatable.

    ``narrow``: read ``Int64ul`` fields as 32 bits (what a pointer is on a 32-bit producer).
    """
    steps: list[tuple] = []
    run_fmt: list[str] = []
    run_names: list[str] = []
    wide = False

    def flush():
        if run_fmt:
            steps.append((_FIXED, tuple(run_names), struct.Struct("<" + "".join(run_fmt))))
            run_fmt.clear()
            run_names.clear()

    if not isinstance(pattern, construct.Struct):
        return None
    for sub in pattern.subcons:
        if not isinstance(sub, construct.Renamed) or not sub.name:
            return None
        name, con = sub.name, sub.subcon
        code = types["fixed"].get(id(con))
        if code is not None:
            if narrow and code == "Q":
                code = "I"
            run_fmt.append(code)
            run_names.append(name)
            wide = wide or code in _WIDE_INTS
            continue
        flush()
        if con is types["wstring"]:
            steps.append((_WSTR, name, None))
        elif con is types["cstring"]:
            steps.append((_CSTR, name, None))
        elif con is types["guid"]:
            steps.append((_GUID, name, None))
        elif con is types["sid"]:
            steps.append((_SID, name, None))
        elif con is types["systemtime"]:
            steps.append((_SYSTIME, name, None))
        elif isinstance(con, construct.Bytes):
            if isinstance(con.length, int):
                steps.append((_BYTES_N, name, con.length))
            elif callable(con.length):
                steps.append((_BYTES_FN, name, con.length))
            else:
                return None
        else:
            return None
    flush()
    return steps, wide


def _fixed_after_first_u64(steps: list[tuple]) -> bool:
    """True when an ``Int64ul`` exists and nothing after the first one has a variable size.

    Then the payload size alone tells the two 32-bit readings apart: with ``p`` pointers and ``u``
    true 64-bit integers among the ``Int64ul`` fields, the real size is ``base + 4p + 8u``, which
    equals the all-64-bit reading only if ``p == 0`` and the all-32-bit one only if ``u == 0``. A
    string or counted field after them could absorb the difference, so those layouts are refused.
    """
    for i, (kind, _name, arg) in enumerate(steps):
        if kind == _FIXED and "Q" in arg.format:
            return all(step[0] in (_FIXED, _GUID, _SYSTIME, _BYTES_N) for step in steps[i:])
    return False


_SYSTIME_STRUCT = struct.Struct("<8h")


def _run_plan(steps: list[tuple], data: bytes) -> tuple[dict[str, Any], int]:
    """Decode ``data`` with a plan; return the fields and where decoding stopped."""
    out: dict[str, Any] = {}
    pos = 0
    end = len(data)
    ctx: _Ctx | None = None
    last = len(steps) - 1
    for index, (kind, name, arg) in enumerate(steps):
        if kind == _FIXED:
            size = arg.size
            if pos + size > end:
                raise _Fail(TRUNCATED, f"{name[0]}.. needs {size} bytes at {pos}, {end - pos} left")
            out.update(zip(name, arg.unpack_from(data, pos)))
            pos += size
        elif kind == _WSTR:
            stop = data.find(b"\x00\x00", pos)
            while stop >= 0 and (stop - pos) & 1:
                stop = data.find(b"\x00\x00", stop + 1)
            if stop < 0 and index == last and not (end - pos) & 1:
                # the last field runs to the end of the payload: ETW writes a final string without its NUL
                out[name] = data[pos:end].decode("utf-16-le", "replace")
                pos = end
                continue
            if stop < 0:
                raise _Fail(TRUNCATED, f"{name}: unterminated UTF-16 string at {pos}")
            out[name] = data[pos:stop].decode("utf-16-le", "replace")
            pos = stop + 2
        elif kind == _CSTR:
            stop = data.find(b"\x00", pos)
            if stop < 0 and index == last:
                out[name] = data[pos:end].decode("utf-8", "backslashreplace")
                pos = end
                continue
            if stop < 0:
                raise _Fail(TRUNCATED, f"{name}: unterminated string at {pos}")
            out[name] = data[pos:stop].decode("utf-8", "backslashreplace")
            pos = stop + 1
        elif kind == _GUID:
            if pos + 16 > end:
                raise _Fail(TRUNCATED, f"{name}: GUID needs 16 bytes at {pos}, {end - pos} left")
            out[name] = str(UUID(bytes_le=data[pos:pos + 16]))
            pos += 16
        elif kind == _SID:
            if pos + 8 > end:
                raise _Fail(TRUNCATED, f"{name}: SID needs 8 bytes at {pos}, {end - pos} left")
            revision, count = data[pos], data[pos + 1]
            if revision != 1:
                raise _Fail(BAD_VALUE, f"{name}: SID revision {revision}")
            size = 8 + 4 * count
            if pos + size > end:
                raise _Fail(TRUNCATED, f"{name}: SID needs {size} bytes at {pos}, {end - pos} left")
            authority = int.from_bytes(data[pos + 2:pos + 8], "big")
            subs = struct.unpack_from(f"<{count}I", data, pos + 8)
            out[name] = "S-1-" + "-".join(str(v) for v in (authority, *subs))
            pos += size
        elif kind == _SYSTIME:
            if pos + 16 > end:
                raise _Fail(TRUNCATED, f"{name}: SYSTEMTIME needs 16 bytes at {pos}, {end - pos} left")
            y, mo, _dow, d, h, mi, s, ms = _SYSTIME_STRUCT.unpack_from(data, pos)
            out[name] = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{ms:03d}"
            pos += 16
        else:
            if kind == _BYTES_N:
                size = arg
            else:
                if ctx is None:
                    ctx = _Ctx()
                ctx.clear()
                ctx.update(out)
                try:
                    size = arg(ctx)
                except Exception as exc:  # a length lambda naming a field the layout lacks
                    raise _Fail(LAYOUT_ERROR, f"{name}: length: {type(exc).__name__}: {exc}") from None
                if not isinstance(size, int) or size < 0:
                    raise _Fail(BAD_VALUE, f"{name}: length {size!r}")
            if pos + size > end:
                raise _Fail(TRUNCATED, f"{name}: {size} bytes at {pos}, {end - pos} left")
            out[name] = data[pos:pos + size].hex()
            pos += size
    return out, pos


_CONSTRUCT_INTERNAL = frozenset({"_io", "_index", "_params", "_root", "_parsing", "_building", "_sizing",
                                 "_subcons", "_stream", "_"})


def _jsonable(value: Any) -> Any:
    """construct's containers (fallback path) as plain JSON-friendly values."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k not in _CONSTRUCT_INTERNAL}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# layouts and the catalogue


class Layout:
    """One etl-parser layout, translated once and cached per (provider, event id, version)."""

    __slots__ = ("provider", "provider_name", "event_id", "version", "name", "class_name", "pattern",
                 "steps", "steps32", "has_wide_ints", "field_names")

    def __init__(self, provider: str, provider_name: str | None, event_id: int, version: int, cls: type,
                 construct_mod, types) -> None:
        self.provider = provider
        self.provider_name = provider_name
        self.event_id = event_id
        self.version = version
        self.name: str | None = None  # etl-parser 1.0.1 has no symbolic event names
        self.class_name = cls.__name__
        self.pattern = cls.pattern
        translated = _translate(cls.pattern, construct_mod, types)
        self.steps32 = None
        if translated is None:
            self.steps = None
            self.has_wide_ints = True  # unknown: treat as pointer-size dependent
        else:
            self.steps, self.has_wide_ints = translated
            if self.has_wide_ints and _fixed_after_first_u64(self.steps):
                self.steps32 = _translate(cls.pattern, construct_mod, types, narrow=True)[0]
        self.field_names = tuple(sub.name for sub in getattr(cls.pattern, "subcons", ()) if getattr(sub, "name", None))

    def parse(self, data: bytes, narrow: bool = False) -> tuple[dict[str, Any], int]:
        """(fields, bytes consumed); raises ``_Fail``. ``narrow``: Int64ul read as 32 bits."""
        if narrow:
            return _run_plan(self.steps32, data)
        if self.steps is not None:
            return _run_plan(self.steps, data)
        import construct

        stream = io.BytesIO(data)
        try:
            parsed = self.pattern.parse_stream(stream)
            return _jsonable(parsed), stream.tell()
        except construct.StreamError as exc:
            raise _Fail(TRUNCATED, str(exc).splitlines()[0]) from None
        except Exception as exc:  # construct may raise anything; nothing escapes
            raise _Fail(BAD_VALUE, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None

    def __repr__(self) -> str:
        return f"<Layout {self.class_name} {self.provider} id={self.event_id} v={self.version}>"


@dataclass(slots=True)
class _Provider:
    module: str
    name: str | None
    events: dict[int, dict[int, type]] | None = None  # filled when first seen
    load_error: str | None = None


class Catalogue:
    """GUID-indexed access to etl-parser's layouts. Thread-safe; one per process is enough."""

    def __init__(self, package_dir: Path | None = None, allow_trailing: bool = False) -> None:
        self._dir = package_dir if package_dir is not None else _package_dir()
        self.allow_trailing = allow_trailing
        self._index: dict[str, _Provider] | None = None
        self._layouts: dict[tuple[str, int, int], Layout | Undecodable] = {}
        self._lock = threading.RLock()
        self._loader = _Loader(self._dir) if self._dir is not None else None
        self._construct = None
        self._types = None
        self.index_seconds = 0.0
        self.stats = CatalogueStats()

    # -- the index ------------------------------------------------------------------------------
    def index(self) -> dict[str, str]:
        """Provider GUID (lower case) -> etl-parser module name; built on first use."""
        return {guid: p.module for guid, p in self._providers().items()}

    def provider_name(self, provider: str) -> str | None:
        entry = self._providers().get(provider)
        return entry.name if entry else None

    def _providers(self) -> dict[str, _Provider]:
        found = self._index
        if found is None:
            with self._lock:
                if self._index is None:
                    self._index = self._build_index()
                found = self._index
        return found

    def _build_index(self) -> dict[str, _Provider]:
        start = time.perf_counter()
        found: dict[str, _Provider] = {}
        if self._dir is not None and self._dir.is_dir():
            for path in self._dir.iterdir():
                stem = path.name[:-3] if path.name.endswith(".py") else None
                if stem is None or stem in _NOT_PROVIDER_MODULES:
                    continue
                with open(path, "rb") as fh:
                    head = fh.read(_HEADER_BYTES)
                match = _GUID_LINE.search(head)
                if match is None:
                    continue
                guid = match.group(1).decode("ascii").lower()
                found[guid] = _Provider(stem, _provider_name(head))
        self.index_seconds = time.perf_counter() - start
        return found

    # -- layouts --------------------------------------------------------------------------------
    def lookup(self, provider: str, event_id: int, version: int) -> Layout | None:
        """The layout for exactly this (provider, event id, version), or None."""
        found = self._layout(provider, event_id, version)
        return found if isinstance(found, Layout) else None

    def _layout(self, provider: str, event_id: int, version: int) -> Layout | Undecodable:
        key = (provider, event_id, version)
        found = self._layouts.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._layouts.get(key)
            if found is None:
                found = self._make_layout(provider, event_id, version)
                self._layouts[key] = found
        return found

    def _events(self, provider: str) -> dict[int, dict[int, type]] | Undecodable:
        """The provider's ``{event_id: {version: Etw subclass}}``, loading its module once."""
        entry = self._providers().get(provider)
        if entry is None:
            return Undecodable(provider, -1, -1, NO_PROVIDER)
        if entry.events is None and entry.load_error is None:
            with self._lock:
                if entry.events is None and entry.load_error is None:
                    try:
                        entry.events = self._loader.load(entry.module, provider)
                    except Exception as exc:  # a broken module costs its provider, nothing else
                        entry.load_error = f"{entry.module}: {type(exc).__name__}: {exc}"
        if entry.events is None:
            return Undecodable(provider, -1, -1, LAYOUT_ERROR, entry.load_error or "")
        return entry.events

    def _make_layout(self, provider: str, event_id: int, version: int) -> Layout | Undecodable:
        events = self._events(provider)
        if isinstance(events, Undecodable):
            return Undecodable(provider, event_id, version, events.kind, events.detail)
        entry = self._providers()[provider]
        versions = events.get(event_id)
        if not versions:
            return Undecodable(provider, event_id, version, NO_EVENT, f"{entry.module} has no event {event_id}")
        cls = versions.get(version)
        if cls is None:
            have = ", ".join(f"v{v}" for v in sorted(versions))
            return Undecodable(provider, event_id, version, NO_VERSION, f"{entry.module} event {event_id} has {have}")
        if self._types is None:
            self._construct, self._types = _types()
        return Layout(provider, entry.name, event_id, version, cls, self._construct, self._types)

    def versions(self, provider: str, event_id: int) -> list[int]:
        """The versions etl-parser declares for one event (loads the provider's module)."""
        events = self._events(provider)
        return [] if isinstance(events, Undecodable) else sorted(events.get(event_id, {}))

    def version_prefix_survey(self) -> Counter:
        """How event layouts change between adjacent versions, over the whole catalogue.

        Loads every module (a few seconds). Counts ``identical``, ``appended`` (the lower layout is
        a leading prefix of the higher), and ``changed`` (anything else) pairs, plus ``events``.
        """
        out: Counter = Counter()
        for provider in self._providers():
            events = self._events(provider)
            if isinstance(events, Undecodable):
                continue
            for versions in events.values():
                if len(versions) < 2:
                    continue
                out["events"] += 1
                ordered = sorted(versions)
                for lo, hi in zip(ordered, ordered[1:]):
                    a, b = _shape(versions[lo].pattern), _shape(versions[hi].pattern)
                    out["identical" if a == b else "appended" if b[:len(a)] == a else "changed"] += 1
        return out

    # -- decoding -------------------------------------------------------------------------------
    def try_decode(self, record) -> CatalogueResult | Undecodable:
        """Decode one record; never raises for anything the payload or a layout can do."""
        provider, event_id, version = record.provider, record.event_id, record.version
        if not getattr(record, "is_event_header", True):
            # etl-parser's layouts are keyed by manifest event ids; a classic record's "event id"
            # is its opcode. Only a provider etl-parser knows is worth the distinction.
            if provider in self._providers():
                return Undecodable(provider, event_id, version, NOT_MANIFEST)
            return Undecodable(provider, event_id, version, NO_PROVIDER)
        found = self._layout(provider, event_id, version)
        if isinstance(found, Undecodable):
            return found
        return self.decode_payload(found, bytes(record.payload), record.pointer_size)

    def decode_payload(self, layout: Layout, data: bytes, pointer_size: int = 8) -> CatalogueResult | Undecodable:
        """Decode raw user data with a layout (for records from other readers, and tests)."""
        if pointer_size == 4 and layout.has_wide_ints:
            return self._decode_32(layout, data)
        try:
            fields, used = layout.parse(data)
        except _Fail as exc:
            return Undecodable(layout.provider, layout.event_id, layout.version, exc.kind, exc.detail)
        except Exception as exc:  # belt and braces: a layout must never take the caller down
            return Undecodable(layout.provider, layout.event_id, layout.version, BAD_VALUE,
                               f"{type(exc).__name__}: {exc}")
        left = len(data) - used
        if left and not self.allow_trailing:
            return Undecodable(layout.provider, layout.event_id, layout.version, TRAILING,
                               f"{layout.class_name} used {used} of {len(data)} bytes")
        return CatalogueResult(layout.provider, layout.provider_name, layout.event_id, layout.version, layout.name,
                               layout.class_name, fields, left)

    def _decode_32(self, layout: Layout, data: bytes) -> CatalogueResult | Undecodable:
        """A 32-bit producer's event with a layout that has ``Int64ul`` fields (pointers or not).

        Both readings are tried: every ``Int64ul`` as 64 bits (none are pointers) and every one as
        32 bits (all are pointers). The event is decoded only when exactly one reading consumes the
        payload exactly; a mix of pointers and 64-bit integers, or an ambiguous payload, is refused.
        """
        if layout.steps32 is None:
            return Undecodable(layout.provider, layout.event_id, layout.version, POINTER_32,
                               f"{layout.class_name}: a variable-size field follows an Int64ul one")
        fits = []
        for narrow in (False, True):
            try:
                fields, used = layout.parse(data, narrow)
            except Exception:
                continue
            if used == len(data):
                fits.append(fields)
        if len(fits) != 1:
            detail = "both readings fit" if fits else "neither reading fits"
            return Undecodable(layout.provider, layout.event_id, layout.version, POINTER_32,
                               f"{layout.class_name}: {detail}")
        return CatalogueResult(layout.provider, layout.provider_name, layout.event_id, layout.version, layout.name,
                               layout.class_name, fits[0], 0)

    def decode(self, record) -> CatalogueResult | None:
        """The decoded event, or None (the reason is counted in ``stats``)."""
        result = self.try_decode(record)
        if isinstance(result, Undecodable):
            self.stats.note(result)
            return None
        self.stats.decoded[result.provider] += 1
        return result


def _shape(pattern) -> list[tuple]:
    """A layout's field names and types, comparable between versions."""
    import construct

    out = []
    for sub in getattr(pattern, "subcons", ()):
        con = getattr(sub, "subcon", sub)
        if isinstance(con, construct.Bytes):
            kind = ("Bytes", con.length if isinstance(con.length, int) else "var")
        else:
            kind = id(con)  # the shared construct / etl.utils singletons
        out.append((getattr(sub, "name", None), kind))
    return out


def _provider_name(head: bytes) -> str | None:
    """The provider name: the first non-empty docstring line before ``GUID :``."""
    text = head.decode("utf-8", "replace").replace("\r", "")
    start = text.find('"""')
    if start < 0:
        return None
    for line in text[start + 3:].split("\n"):
        line = line.strip()
        if line.startswith("GUID"):
            return None
        if line:
            return line
    return None


# --------------------------------------------------------------------------------------------------
# module-level API on one shared catalogue

_DEFAULT: Catalogue | None = None
_DEFAULT_LOCK = threading.Lock()


def default_catalogue() -> Catalogue:
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = Catalogue()
    return _DEFAULT


def index() -> dict[str, str]:
    """Provider GUID -> etl-parser module name."""
    return default_catalogue().index()


def provider_name(provider: str) -> str | None:
    return default_catalogue().provider_name(provider)


def lookup(provider: str, event_id: int, version: int) -> Layout | None:
    """The layout for exactly (provider, event id, version), or None."""
    return default_catalogue().lookup(provider, event_id, version)


def decode(record) -> CatalogueResult | None:
    """Decode a ``diag.read.Record`` with the catalogue; None if it cannot (reason in ``stats()``)."""
    return default_catalogue().decode(record)


def try_decode(record) -> CatalogueResult | Undecodable:
    return default_catalogue().try_decode(record)


def stats() -> CatalogueStats:
    return default_catalogue().stats
