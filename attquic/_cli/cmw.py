"""``attquic cmw decode FILE``: show the tree of a RATS Conceptual Message Wrapper.

Reads a CMW in any form (CBOR record/tag/collection, JSON record/collection), as binary, as
hex text, or inside an X.509 certificate's id-pe-cmw extension (DER or PEM). Prints the form,
types, indicators, value lengths and a text or hex preview of each value. Exit 2 with a
one-line reason on invalid input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from cryptography import x509

from attquic import cmw
from attquic._cli._input import NotHexError, unhex
from attquic.errors import AttquicError

__all__ = ["describe", "register", "render_text"]

_PREVIEW_BYTES: Final = 32
_PREVIEW_CHARS: Final = 60
_DER_SEQUENCE: Final = 0x30
_PEM_CERTIFICATE: Final = b"-----BEGIN CERTIFICATE-----"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cmw`` command group to the ``attquic`` parser."""
    group = subparsers.add_parser("cmw", help="RATS Conceptual Message Wrappers")
    commands = group.add_subparsers(dest="cmw_command", required=True)
    decode = commands.add_parser(
        "decode",
        help="show the tree of a CMW",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    decode.add_argument(
        "file", type=Path, help="CMW (binary, JSON or hex) or a certificate; '-' reads stdin"
    )
    decode.add_argument("--json", action="store_true", help="print JSON")
    decode.add_argument(
        "--max-depth",
        type=int,
        default=cmw.DEFAULT_MAX_DEPTH,
        help=f"collection nesting limit (default {cmw.DEFAULT_MAX_DEPTH})",
    )
    decode.set_defaults(handler=_decode_command)


# --- input -------------------------------------------------------------------------------------


def _load(raw: bytes, max_depth: int) -> tuple[str, bytes, cmw.CMW]:
    """(source kind, serialised CMW, decoded CMW) for file contents."""
    try:
        raw = unhex(raw)
    except NotHexError as exc:
        raise cmw.MalformedEncoding(str(exc)) from None
    if raw.lstrip().startswith(_PEM_CERTIFICATE) or raw[:1] == bytes([_DER_SEQUENCE]):
        try:
            certificate = (
                x509.load_der_x509_certificate(raw)
                if raw[:1] == bytes([_DER_SEQUENCE])
                else x509.load_pem_x509_certificate(raw)
            )
        except ValueError as exc:
            raise cmw.MalformedEncoding(f"not a CMW and not a certificate: {exc}") from None
        _, contents = cmw.extension_contents(certificate)
        return (
            "x509-certificate",
            contents,
            cmw.from_x509_extension(certificate, max_depth=max_depth),
        )
    return "cmw", raw, cmw.decode(raw, max_depth=max_depth)


# --- description -------------------------------------------------------------------------------


def _preview(value: bytes) -> dict[str, Any]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text and all(char.isprintable() or char in "\t\n\r" for char in text):
        return {
            "preview_kind": "text",
            "preview": text[:_PREVIEW_CHARS],
            "truncated": len(text) > _PREVIEW_CHARS,
        }
    return {
        "preview_kind": "hex",
        "preview": value[:_PREVIEW_BYTES].hex(),
        "truncated": len(value) > _PREVIEW_BYTES,
    }


def _indicator_names(record: cmw.CMWRecord) -> list[str]:
    return [
        flag.name.lower().replace("_", "-")
        for flag in cmw.Indicator
        if flag.name is not None and flag in record.indicator
    ]


def _describe_cmw(value: cmw.CMW) -> dict[str, Any]:
    if isinstance(value, cmw.CMWRecord):
        return {
            "kind": "record",
            "type": value.type,
            "type_kind": "media-type" if value.media_type is not None else "content-format",
            "ind": value.ind,
            "indicators": _indicator_names(value),
            "value_length": len(value.value),
            **_preview(value.value),
        }
    if isinstance(value, cmw.CMWTag):
        return {
            "kind": "tag",
            "tag_number": value.number,
            "content_format": value.content_format,
            "value_length": len(value.value),
            **_preview(value.value),
        }
    return {
        "kind": "collection",
        "cmwc_t": value.cmwc_t,
        "items": [
            {"label": label, "cmw": _describe_cmw(item)} for label, item in value.items.items()
        ],
    }


def describe(data: bytes, *, max_depth: int = cmw.DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """A JSON-ready description of the CMW in ``data`` (raises CMWError if invalid)."""
    source, serialised, decoded = _load(data, max_depth)
    return {"source": source, "form": cmw.sniff(serialised).value, "cmw": _describe_cmw(decoded)}


# --- text rendering ----------------------------------------------------------------------------


def _render_value(node: dict[str, Any]) -> str:
    more = "..." if node["truncated"] else ""
    if node["preview_kind"] == "text":
        shown = json.dumps(node["preview"], ensure_ascii=False)
    else:
        shown = node["preview"] or "(empty)"
    length = node["value_length"]
    return f"{length} byte{'s' if length != 1 else ''}  {node['preview_kind']}: {shown}{more}"


def _render_node(node: dict[str, Any]) -> str:
    if node["kind"] == "record":
        type_text = json.dumps(node["type"]) if node["type_kind"] == "media-type" else node["type"]
        parts = [f"record  type={type_text}"]
        if node["type_kind"] == "content-format":
            parts[0] += " (C-F)"
        if node["ind"] is not None:
            parts.append(f"ind={node['ind']} ({', '.join(node['indicators'])})")
        parts.append(_render_value(node))
        return "  ".join(parts)
    if node["kind"] == "tag":
        head = f"tag {node['tag_number']} (C-F {node['content_format']})"
        return f"{head}  {_render_value(node)}"
    count = len(node["items"])
    head = f"collection  {count} item{'s' if count != 1 else ''}"
    if node["cmwc_t"] is not None:
        head += f"  __cmwc_t={node['cmwc_t']}"
    return head


def _render_tree(node: dict[str, Any], indent: str, lines: list[str]) -> None:
    if node["kind"] != "collection":
        return
    for item in node["items"]:
        label = json.dumps(item["label"], ensure_ascii=False)
        lines.append(f"{indent}{label}: {_render_node(item['cmw'])}")
        _render_tree(item["cmw"], indent + "  ", lines)


def render_text(description: dict[str, Any]) -> str:
    """A readable indented tree for :func:`describe`'s output."""
    source = " (from id-pe-cmw)" if description["source"] == "x509-certificate" else ""
    lines = [f"{description['form']}{source}: {_render_node(description['cmw'])}"]
    _render_tree(description["cmw"], "  ", lines)
    return "\n".join(lines)


# --- command -----------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _decode_command(args: argparse.Namespace) -> int:
    try:
        raw = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    except OSError as exc:
        print(
            f"attquic cmw decode: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr
        )
        return 2
    try:
        description = describe(raw, max_depth=args.max_depth)
    except AttquicError as exc:
        print(f"attquic cmw decode: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(description, indent=2, ensure_ascii=False))
    else:
        print(render_text(description))
    return 0
