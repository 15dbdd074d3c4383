"""Streaming SPAN XML reader: the file fed in 64 KB chunks to ElementTree's C parser, one record at a
time.

The parser appends its start/end events to a plain list that one loop drains after each chunk (no
``iterparse`` generators: they cost more than the parse). Each ``<phy>`` and ``<fut>`` is read at
its end event and then detached from the tree, each option series with its ``<opt>`` children at
the series' end (one series in memory at a time), as are portfolios and commodity definitions once
consumed, so memory holds the contracts kept (compact typed columns, see :class:`.model.Columns`),
never the XML tree. Headers of a series or portfolio are read from the fields that precede their
contracts (the schema's order).
"""

from __future__ import annotations

import gc
import io
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import fields as F
from .builder import Builder
from .commodities import add_commodity, add_inter_spreads
from .model import LINEAR_PORTFOLIOS, OPTION_PORTFOLIOS, PF_TYPE, SpanFile
from .schema import check_children

_CONTAINERS = {"spanFile", "pointInTime", "clearingOrg", "exchange"}
#: tags whose end event does something (every other element waits for its parent's)
_HANDLED = frozenset(
    {
        "opt",
        "phy",
        "fut",
        "series",
        *PF_TYPE,
        "exchange",
        "clearingOrg",
        "pointInTime",
        "spanFile",
        "definitions",
        "businessFunction",
        "portfolio",
        "pointDef",
        "ccDef",
        "interSpreads",
        "curConv",
        "superSpreads",
        "superInterClearSpreads",
        "interClearSpreads",
        "debtPf",
        "equityPf",
        "fwdPf",
        "IRSwapPf",
        "CDSwapPf",
        "eDebtPf",
        "cmbPf",
    }
)


def _on_end(b: Builder, elem: ET.Element, stack: list[ET.Element]) -> bool:
    """Handle a completed element; True when it was consumed (and may be detached)."""
    tag = elem.tag
    parent = stack[-1].tag if stack else ""
    if parent in LINEAR_PORTFOLIOS and tag in ("phy", "fut"):
        if (tag == "phy") != (parent == "phyPf"):
            raise ValueError(f"{parent}: a <{tag}> does not belong in a <{parent}>")
        b.linear(elem, stack[-1], stack[-2].findtext("exch", "").strip())
    elif parent in OPTION_PORTFOLIOS and tag == "series":
        head = b.series_head(elem, stack[-1], stack[-2].findtext("exch", "").strip())
        if head is not None:
            check_children(F.children(elem), "series", head["where"])
            b.options(elem, head)
        b.series.pop(id(elem), None)
    elif parent == "exchange" and tag in PF_TYPE:
        b.end_portfolio(elem, stack[-1].findtext("exch", "").strip())
    elif parent == "exchange" and tag != "exch":
        return False
    elif parent == "clearingOrg":
        return _org_child(b, elem, stack[-1])
    elif parent in ("spanFile", "pointInTime") and tag in ("definitions", "businessFunction", "portfolio"):
        return True  # informational, dropped as soon as read
    elif tag == "clearingOrg" and parent == "pointInTime":
        b.n_org += 1
        b.org_fields(elem)
        check_children(F.children(elem), "clearingOrg", "pointInTime/clearingOrg")
    elif tag in _CONTAINERS:
        where = "spanFile" if tag == "spanFile" else f"{parent}/{tag}"
        check_children(F.children(elem), tag, where)
        if tag == "pointInTime":
            if "date" in b.header:
                raise ValueError("spanFile: expected one <pointInTime>, got 2")
            b.header["date"] = F.text(elem, "date", "pointInTime")
            b.header["is_settl"] = F.flag(elem, "isSetl", "pointInTime")
        if tag == "spanFile":
            b.header["file_format"] = F.text(elem, "fileFormat", "spanFile", "")  # optional in the schema
            b.header["created"] = F.text(elem, "created", "spanFile", "")
        return False
    else:
        return False
    return True


def _org_child(b: Builder, elem: ET.Element, org: ET.Element) -> bool:
    tag = elem.tag
    where = "pointInTime/clearingOrg"
    if tag == "pointDef":
        b.point_def(elem)
    elif tag == "ccDef":
        add_commodity(b.defs, elem, len(b.defs.rows), where)
    elif tag == "interSpreads":
        add_inter_spreads(b.defs, elem, where)
    elif tag == "curConv":
        check_children(F.children(elem), "curConv", where + "/curConv")
        b.conversions.append(
            {
                "from_cur": F.text(elem, "fromCur", where + "/curConv"),
                "to_cur": F.text(elem, "toCur", where + "/curConv"),
                "factor": F.num(elem, "factor", where + "/curConv", positive=True),
            }
        )
    elif tag in ("superSpreads", "superInterClearSpreads", "interClearSpreads"):
        if len(elem):
            raise ValueError(f"{where}/<{tag}>: {tag} are not supported (they change the margin)")
    elif tag == "exchange":
        check_children(F.children(elem), "exchange", f"{where}/exchange")
    elif tag == "fileFormat":
        return False
    else:
        return False
    return True


def _stream(source: Any, label: str, products: Iterable[str] | None) -> SpanFile:
    # The reader allocates millions of small objects and creates no reference cycles (ElementTree
    # elements hold no parent links; records are plain values): the cyclic collector would only
    # re-traverse the growing tables, a third of the time on a 60 MB file. Paused while reading.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _read(source, label, products)
    finally:
        if paused:
            gc.enable()


class _PullFallback:
    """The public-API event source (``XMLPullParser.read_events``), for an ElementTree without the
    parser's ``_setevents`` hook; same events, one generator step each."""

    def __init__(self, events: list[tuple[str, ET.Element]]) -> None:
        self._parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        self._events = events

    def feed(self, data: bytes) -> None:
        self._parser.feed(data)
        self._events.extend(self._parser.read_events())  # type: ignore[arg-type]

    def close(self) -> None:
        self._parser.close()
        self._events.extend(self._parser.read_events())  # type: ignore[arg-type]


def _event_parser() -> tuple[Any, list[tuple[str, ET.Element]]]:
    """An XML parser that appends its ("start" | "end", element) events to a plain list.

    This is what ``iterparse`` does underneath, minus its two generator layers and queue, which
    cost more than the parse itself (one Python frame switch per event, ~2 events per element)."""
    events: list[tuple[str, ET.Element]] = []
    parser = ET.XMLParser(target=ET.TreeBuilder())
    hook = getattr(parser, "_setevents", None)
    if hook is None:  # pragma: no cover - every CPython since 3.4 has it
        return _PullFallback(events), events
    hook(events, ("start", "end"))
    return parser, events


_CHUNK = 1 << 16


def _read_events(source: Any, label: str, products: Iterable[str] | None) -> SpanFile:
    """The reader on start/end events: also the one that reports a malformed file (it knows the
    open elements and handles every record before the break)."""
    b = Builder(products)
    stack: list[ET.Element] = []
    root_tag = None
    parser, events = _event_parser()
    failure: ET.ParseError | None = None
    done = False
    push, pop = stack.append, stack.pop
    while not done:
        chunk = source.read(_CHUNK)
        done = not chunk
        try:
            if done:
                parser.close()
            else:
                parser.feed(chunk)
        except ET.ParseError as exc:
            failure, done = exc, True
        # the events before a parse error are handled first (a bad value ahead of the break is
        # reported as such, and the error names the open elements), as with iterparse
        if root_tag is None and events:
            root_tag = events[0][1].tag
        for event, elem in events:  # ~2 events an element: kept to a push, or a pop and a set lookup
            if event == "start":
                push(elem)
            elif pop().tag in _HANDLED and _on_end(b, elem, stack) and stack:
                elem.clear()
                stack[-1].remove(elem)
        events.clear()
    if failure is not None:
        at = "/".join(e.tag for e in stack) or "start of file"
        raise ValueError(f"{label}malformed SPAN XML (truncated or not well-formed) in {at}: {failure}")
    return _finish(b, root_tag)


def _finish(b: Builder, root_tag: str | None) -> SpanFile:
    if b.header.get("file_format") and not b.header["file_format"].startswith("4."):
        raise ValueError(
            f"spanFile/<fileFormat>: unsupported format {b.header['file_format']!r} (this reader handles 4.x)"
        )
    return b.finish(root_tag)


#: containers whose children are handled one by one (records below them are handled whole): the
#: schema's path to the contracts, so the walk is at most 5 deep whatever the nesting of the file
_DESCEND = {
    "spanFile": frozenset({"pointInTime"}),
    "pointInTime": frozenset({"clearingOrg"}),
    "clearingOrg": frozenset({"exchange"}),
    "exchange": frozenset(PF_TYPE),
}
_NONE: frozenset[str] = frozenset()


def _drain(b: Builder, elem: ET.Element, path: list[ET.Element], final: bool, seen: dict[int, int]) -> None:
    """Handle the complete children of ``elem`` (all when ``final``, else all but the open last one)
    in document order, post-order below the containers, as their end events would; detach those
    consumed. ``seen`` holds how many leading children of a container were handled already."""
    here = [*path, elem]
    inner = _DESCEND.get(elem.tag, _NONE)
    start = seen.pop(id(elem), 0)
    stop = len(elem) if final else len(elem) - 1
    if stop > start:
        kept = []
        for child in elem[start:stop]:
            if child.tag in inner:  # complete: what is left of its children first
                _drain(b, child, here, True, seen)
            if child.tag in _HANDLED and _on_end(b, child, here):
                child.clear()
            else:
                kept.append(child)
        elem[start:stop] = kept
        start += len(kept)
    if not final:
        seen[id(elem)] = start
        if len(elem) and elem[-1].tag in inner:
            _drain(b, elem[-1], here, False, seen)


def _read_tree(source: Any, products: Iterable[str] | None) -> SpanFile | None:
    """The reader without per-element events: the C parser builds the tree chunk by chunk, and after
    each chunk the complete records along the open path (root, pointInTime, clearingOrg, exchange,
    portfolio) are handled and detached. Python runs once per record, never per element. None when
    the parser has no event hook (then :func:`_read_events` reads)."""
    events: list[tuple[str, ET.Element]] = []
    parser = ET.XMLParser(target=ET.TreeBuilder())
    hook = getattr(parser, "_setevents", None)
    if hook is None:  # pragma: no cover - every CPython since 3.4 has it
        return None
    hook(events, ("start",))  # until the root is known
    b = Builder(products)
    root: ET.Element | None = None
    seen: dict[int, int] = {}
    while chunk := source.read(_CHUNK):
        parser.feed(chunk)
        if root is None and events:
            root = events[0][1]
            hook(events, ())
            events.clear()
        if root is not None:
            _drain(b, root, [], False, seen)
    parser.close()
    assert root is not None  # close() raises on a document without an element
    _drain(b, root, [], True, seen)
    if root.tag in _HANDLED:
        _on_end(b, root, [])
    return _finish(b, root.tag)


def _read(source: Any, label: str, products: Iterable[str] | None) -> SpanFile:
    begin = source.tell()
    try:
        got = _read_tree(source, products)
    except ET.ParseError:
        got = None  # read again on events: the error names the open elements, as it always has
    if got is not None:
        return got
    source.seek(begin)
    return _read_events(source, label, products)


def read_span(path: str | os.PathLike[str], *, products: Iterable[str] | None = None) -> SpanFile:
    """Read a SPAN XML risk-parameter file (``.spn``, fileFormat 4.x) from ``path``, streaming.

    ``products``: keep only the portfolios whose ``<pfCode>`` is listed (all when None); the other
    contracts are skipped while streaming (commodity and spread definitions are always read)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: not a regular file")
    with open(p, "rb") as fh:
        return _stream(fh, f"{p}: ", products)


def parse_span(text: str | bytes, *, products: Iterable[str] | None = None) -> SpanFile:
    """Parse SPAN XML held in memory (see :func:`read_span`)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if isinstance(text, str) and data.lstrip().startswith(b"<?xml"):
        # the declaration may name another encoding than the str's; drop it, the bytes are UTF-8
        end = data.find(b"?>")
        data = data[end + 2 :] if end >= 0 else data
    return _stream(io.BytesIO(data), "", products)


__all__ = ["parse_span", "read_span"]
