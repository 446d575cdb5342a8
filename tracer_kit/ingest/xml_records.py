"""XML: records are the repeated child elements of the root; fields are children or attributes."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracer_kit.ingest.registry import (
    Reader,
    ReadOutcome,
    ReadRequest,
    outcome,
    register_reader,
    text_frame,
    with_rows,
)
from tracer_kit.ingest.source import file_error

__all__: list[str] = []


def _read_xml(path: Path) -> pl.DataFrame:
    """Records are the repeated child elements of the root; their fields are child elements or attributes."""
    import xml.etree.ElementTree as ET

    rows: list[dict[str, str | None]] = []
    record_tag = None
    depth = 0
    try:
        for event, elem in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 2 and record_tag is None:
                    record_tag = elem.tag
                continue
            depth -= 1
            if depth == 1 and elem.tag == record_tag:
                row: dict[str, str | None] = dict(elem.attrib)
                for child in elem:
                    text = (child.text or "").strip()
                    row[_local(child.tag)] = text if text else None
                rows.append(row)
                elem.clear()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise file_error(path, f"is not well-formed XML ({exc})", line=line) from None
    if not rows:
        raise file_error(path, "holds no repeated record elements under its root")
    return text_frame(rows)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_reader(req: ReadRequest) -> ReadOutcome:
    return outcome(with_rows(_read_xml(req.work).lazy(), line_offset=None, notes=req.notes))


register_reader(Reader("xml", True, _xml_reader, (".xml",)))
