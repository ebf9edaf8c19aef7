"""The facts reference: every fact kind a rule can read, with its fields, generated from the models.

``python -m diag.engine.factsdoc > rules/FACTS.md``; a test keeps the file equal to this output, so
the reference cannot drift from what the loader accepts.
"""

from __future__ import annotations

import inspect

from diag.engine import aggregate
from diag.engine.conditions import field_types
from diag.engine.vocabulary import vocabulary
from diag.facts.models import FACT_MODELS

_TYPES = {"number": "number", "str": "text", "bool": "true/false"}


def render() -> str:
    lines = [
        "# Facts a rule can read",
        "",
        "Generated from the fact models by `python -m diag.engine.factsdoc > rules/FACTS.md` (a test keeps it",
        "current). A field marked *may be empty* is false in every test but `$nex`, and cannot be compared",
        "with another field. Times are ISO 8601 text (`2024-05-01T10:00:00Z`), compared as text. Fields",
        "with words take those words in any case; `direction` is `in`, `out` or `unknown` on every kind.",
        "List fields (samples, hops) are kept with the fact for its evidence but cannot be tested.",
        "",
        "Kinds: " + ", ".join(f"[{kind}](#{kind})" for kind in sorted(FACT_MODELS)) + ", [aggregate](#aggregate).",
        "",
    ]
    for kind in sorted(FACT_MODELS):
        model = FACT_MODELS[kind]
        doc = " ".join((inspect.getdoc(model) or "").split())
        lines += [f"## {kind}", "", doc, "", "| field | type | words or note |", "| --- | --- | --- |"]
        for name, field in field_types(kind).items():
            if name == "kind":
                continue
            info = model.model_fields[name]
            words = vocabulary(kind, name)
            kind_of = _TYPES[field.category] + (", time" if "datetime" in str(info.annotation) else "")
            note = words.describe() if words else (info.description or "")
            empty = " (may be empty)" if field.optional else ""
            lines.append(f"| `{name}` | {kind_of}{empty} | {_cell(note)} |")
        lines.append("")
    lines += [
        "## aggregate",
        "",
        "The result of an `aggregate:` pattern, one per group: the `group_by` fields of the facts it read, and",
        "",
        "| field | type | note |",
        "| --- | --- | --- |",
        "| `value` | number | the count, sum or number of distinct values (with a window: the largest of any window) |",
        "| `facts` | number | how many facts it was computed from |",
        "| `first_seen`, `last_seen` | text, time (may be empty) | the earliest and latest time of those facts "
        "(the window's `time` field, else `first_seen`) |",
        "| `untimed` | number | facts of the group with no time, left out of a windowed aggregate |",
        "| `aggregate` | text | which aggregate this is (set by wnvdiag; a rule never needs it) |",
        "",
        f"Functions: {', '.join(aggregate.FUNCTIONS)}. At most {aggregate.MAX_GROUP_FIELDS} group fields.",
        "",
    ]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    print(render(), end="")
