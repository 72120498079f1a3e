"""Writing benchmark tables into the docs, between markers.

Each benchmark owns a section of a docs page delimited by
``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; rerunning it replaces the
section's content and leaves the rest of the page alone.
"""

from __future__ import annotations

from pathlib import Path


def write_section(doc: Path, name: str, text: str) -> bool:
    """Replace the ``name`` section of ``doc`` with ``text``.

    Returns ``False`` (and writes nothing) when the page has no such section.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    page = doc.read_text()
    if start not in page or end not in page:
        print(f"{doc}: no '{start}' ... '{end}' section; table not written")
        return False
    head, rest = page.split(start, 1)
    tail = rest.split(end, 1)[1]
    doc.write_text(f"{head}{start}\n{text}\n{end}{tail}")
    return True
