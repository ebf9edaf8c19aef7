"""Reading a host-information file as text, and telling localized output apart."""

from __future__ import annotations

import re
from pathlib import Path

from diag.errors import BadInputError

LOCALIZED_HINT = ("localized output is not supported: capture it again with an English display language, or attach "
                  "'Get-NetIPAddress -IncludeAllCompartments | ConvertTo-Json', whose field names are not localized")
# Words of localized ipconfig output (de, fr, es, it, pt, nl, pl): labels and headers.
_LOCALIZED_WORDS = re.compile(
    r"Adresse|Subnetz|Standardgateway|Konfiguration|Verbindungsspezifisch|Physische|Beschreibung|"
    r"Masque|Passerelle|Carte |Configuration IP|Suffixe|"
    r"Direcci[oó]n|M[aá]scara|Puerta de enlace|Adaptador|Configuraci[oó]n|"
    r"Indirizzo|Gateway predefinito|Scheda|Configurazione|"
    r"Endere[cç]o|Gateway Padr[aã]o|Configura[cç][aã]o|"
    r"Standaardgateway|Subnetmasker|Maska podsieci|Brama domy|Karta ",
    re.IGNORECASE)


class HostInfoError(BadInputError):
    """A host-information file that cannot be used; ``str()`` is ``file:line: what is wrong``."""


def looks_localized(text: str) -> bool:
    return any(ord(c) > 127 for c in text) or bool(_LOCALIZED_WORDS.search(text))


def read_text(path: Path) -> str:
    """The file's text: UTF-16 (with or without BOM, as PowerShell redirection writes), UTF-8, or ANSI."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise HostInfoError("no such file", path) from None
    except IsADirectoryError:
        raise HostInfoError("is a directory, not a host-information file", path) from None
    except OSError as exc:
        raise HostInfoError(f"cannot be read ({exc.strerror or exc})", path) from None
    if not raw.strip():
        raise HostInfoError("is empty", path)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return _text_only(raw.decode("utf-16"), path)
        except UnicodeDecodeError as exc:
            raise HostInfoError(f"is UTF-16 text that is damaged or cut short (at byte {exc.start}: {exc.reason})",
                                path) from None
    if raw[:3] == b"\xef\xbb\xbf":
        return _text_only(raw[3:].decode("utf-8", "replace"), path)
    if raw.count(b"\x00") > len(raw) // 4:
        return _text_only(raw[: len(raw) // 2 * 2].decode("utf-16-le", "replace"), path)
    if b"\x00" in raw:
        raise _binary(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _text_only(text: str, path: Path) -> str:
    """Refuse what decoded to gibberish: a binary file (a trace given as host info) is not text in any encoding."""
    sample = text[:4096]
    printable = sum(1 for c in sample if c.isprintable() or c in "\r\n\t")
    if sample and printable < 0.95 * len(sample):
        raise _binary(path)
    return text


def _binary(path: Path) -> HostInfoError:
    hint = "; an ETL trace is the TRACE argument, not --host-info" if path.suffix.lower() == ".etl" else ""
    return HostInfoError(f"is binary, not the text or JSON output of ipconfig / Get-NetIPAddress{hint}", path)
