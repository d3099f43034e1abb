"""``attquic ea decode FILE``: show the structure of an RFC 9261 request or authenticator.

For debugging a peer: reads binary or hex text, prints message types, the context, extensions
by name, certificates (subject, key type) and the signature scheme. Nothing is verified (there
is no connection to take keys from). Exit 2 with a one-line reason on malformed input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attquic import profile
from attquic._cli._input import NotHexError, read_file, unhex
from attquic.ea.messages import (
    HANDSHAKE_NAMES,
    REQUEST_TYPES,
    Authenticator,
    AuthenticatorRequest,
    CertificateMessage,
    Extension,
    decode_signature_schemes,
    split_handshake_messages,
)
from attquic.ea.schemes import is_tls13_scheme, key_description, scheme_name
from attquic.errors import AttquicError, EADecodeError

__all__ = ["describe", "register", "render_text"]

_HASH_LENGTHS = {"sha256": 32, "sha384": 48}
_TEXT_PREVIEW = 64


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ea`` command group to the ``attquic`` parser."""
    group = subparsers.add_parser("ea", help="RFC 9261 exported authenticators")
    commands = group.add_subparsers(dest="ea_command", required=True)
    decode = commands.add_parser(
        "decode",
        help="show the structure of an authenticator request or authenticator",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    decode.add_argument("file", type=Path, help="binary or hex text; '-' reads stdin")
    decode.add_argument("--json", action="store_true", help="print JSON")
    decode.add_argument(
        "--hash",
        choices=sorted(_HASH_LENGTHS),
        default=None,
        help="the connection's TLS hash (default: inferred from the Finished length)",
    )
    decode.add_argument(
        "--headerless",
        action="store_true",
        help="the input is a request body without the 4-byte handshake header (as Fizz sends)",
    )
    decode.set_defaults(handler=_decode_command)


def _read_input(path: Path) -> bytes:
    try:
        return unhex(read_file(path))
    except NotHexError as exc:
        raise EADecodeError(str(exc)) from None


def _extension_json(extension: Extension) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": extension.type,
        "name": extension.name,
        "length": len(extension.data),
        "data_hex": extension.data.hex(),
    }
    if extension.type in (profile.EXT_SIGNATURE_ALGORITHMS, profile.EXT_SIGNATURE_ALGORITHMS_CERT):
        try:
            schemes = decode_signature_schemes(extension.data)
        except EADecodeError as exc:
            out["error"] = str(exc)
        else:
            out["signature_schemes"] = [scheme_name(s) for s in schemes]
    return out


def _describe_request(request: AuthenticatorRequest) -> dict[str, Any]:
    return {
        "kind": "authenticator_request",
        "msg_type": request.msg_type,
        "message": request.name,
        "context_hex": request.context.hex(),
        "extensions": [_extension_json(e) for e in request.extensions],
    }


def _certificate_json(index: int, cert_data: bytes) -> dict[str, Any]:
    try:
        certificate = x509.load_der_x509_certificate(cert_data)
        subject = certificate.subject.rfc4514_string()
        issuer = certificate.issuer.rfc4514_string()
    except Exception:  # ValueError, x509.InvalidVersion, ...: any parse failure
        raise EADecodeError(f"certificate entry {index} is not a DER X.509 certificate") from None
    try:
        key_type = key_description(certificate.public_key())
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        spki_sha256: str | None = hashlib.sha256(spki).hexdigest()
    except Exception:  # an exotic key cryptography cannot load: still show the rest
        key_type = f"unsupported ({certificate.public_key_algorithm_oid.dotted_string})"
        spki_sha256 = None
    return {
        "subject": subject,
        "issuer": issuer,
        "self_issued": subject == issuer,
        "serial_hex": format(certificate.serial_number, "x"),
        "not_valid_before": certificate.not_valid_before_utc.isoformat(),
        "not_valid_after": certificate.not_valid_after_utc.isoformat(),
        "key_type": key_type,
        "spki_sha256": spki_sha256,
        "der_length": len(cert_data),
    }


def _describe_certificate(certificate: CertificateMessage) -> dict[str, Any]:
    entries = []
    for index, entry in enumerate(certificate.entries):
        described = _certificate_json(index, entry.cert_data)
        described["extensions"] = [_extension_json(e) for e in entry.extensions]
        entries.append(described)
    return {"context_hex": certificate.context.hex(), "certificates": entries}


def _hash_length(messages_last_body_length: int, hash_name: str | None) -> int:
    if hash_name is not None:
        return _HASH_LENGTHS[hash_name]
    if messages_last_body_length in _HASH_LENGTHS.values():
        return messages_last_body_length
    raise EADecodeError(
        f"Finished is {messages_last_body_length} bytes: not a SHA-256 or SHA-384 MAC"
    )


def _describe_authenticator(data: bytes, hash_name: str | None) -> dict[str, Any]:
    messages = split_handshake_messages(data)
    hash_length = _hash_length(len(messages[-1].body), hash_name)
    authenticator = Authenticator.decode(data, hash_length=hash_length)
    out: dict[str, Any] = {
        "kind": "empty_authenticator" if authenticator.is_empty else "authenticator",
        "messages": [HANDSHAKE_NAMES[m.msg_type] for m in messages],
        "hash": next(name for name, size in _HASH_LENGTHS.items() if size == hash_length),
    }
    if authenticator.certificate is not None and authenticator.certificate_verify is not None:
        out.update(_describe_certificate(authenticator.certificate))
        scheme = authenticator.certificate_verify.scheme
        out["signature_scheme"] = {
            "code": scheme,
            "name": scheme_name(scheme),
            "valid_for_tls13": is_tls13_scheme(scheme),
        }
        out["signature_hex"] = authenticator.certificate_verify.signature.hex()
    out["finished_hex"] = authenticator.finished.verify_data.hex()
    return out


def describe(
    data: bytes, *, hash_name: str | None = None, headerless: bool = False
) -> dict[str, Any]:
    """A JSON-ready description of a request or authenticator; EADecodeError if malformed."""
    if headerless:
        return _describe_request(AuthenticatorRequest.decode(data, with_header=False))
    _check_framing(data)
    if data[0] in REQUEST_TYPES:
        return _describe_request(AuthenticatorRequest.decode(data))
    return _describe_authenticator(data, hash_name)


_FIRST_TYPES = (*sorted(REQUEST_TYPES), profile.HS_CERTIFICATE, profile.HS_FINISHED)


def _check_framing(data: bytes) -> None:
    """Reject input that is not framed as RFC 9261 handshake messages, saying so plainly."""
    if not data:
        raise EADecodeError("empty input: no RFC 9261 request or authenticator")
    declared = int.from_bytes(data[1:4], "big") if len(data) >= 4 else None
    if data[0] in _FIRST_TYPES and declared is not None and declared <= len(data) - 4:
        return
    if data[0] not in _FIRST_TYPES:
        expected = ", ".join(f"{HANDSHAKE_NAMES[t]} ({t})" for t in _FIRST_TYPES)
        problem = (
            f"not an RFC 9261 request or authenticator: the first byte is {data[0]}, "
            f"not a handshake message type it can start with ({expected})"
        )
    elif declared is None:
        problem = f"not an RFC 9261 message: {len(data)} bytes cannot hold a handshake header"
    else:
        problem = (
            f"not an RFC 9261 message (or truncated): its handshake header declares "
            f"{declared} bytes, the input has {len(data) - 4} after the header"
        )
    if _is_headerless_request(data):
        problem += "; it decodes as a request without the 4-byte handshake header: try --headerless"
    raise EADecodeError(problem)


def _is_headerless_request(data: bytes) -> bool:
    try:
        AuthenticatorRequest.decode(data, with_header=False)
    except AttquicError:
        return False
    return True


def _shorten(hex_text: str) -> str:
    if len(hex_text) <= 2 * _TEXT_PREVIEW:
        return hex_text or "(empty)"
    return f"{hex_text[: 2 * _TEXT_PREVIEW]}... ({len(hex_text) // 2} bytes)"


def _render_extensions(extensions: list[dict[str, Any]], indent: str) -> list[str]:
    lines = []
    for extension in extensions:
        line = (
            f"{indent}{extension['name']} (0x{extension['type']:04x}), {extension['length']} bytes"
        )
        if "signature_schemes" in extension:
            line += ": " + ", ".join(extension["signature_schemes"])
        elif extension["length"]:
            line += ": " + _shorten(extension["data_hex"])
        lines.append(line)
    return lines or [f"{indent}(none)"]


def render_text(description: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`describe`'s output."""
    kind = description["kind"]
    if kind == "authenticator_request":
        lines = [
            f"{description['message']} ({description['msg_type']})",
            f"  context: {_shorten(description['context_hex'])}",
            "  extensions:",
            *_render_extensions(description["extensions"], "    "),
        ]
        return "\n".join(lines)
    lines = [f"{kind.replace('_', ' ')}: {' + '.join(description['messages'])}"]
    lines.append(f"  hash: {description['hash']}")
    if kind == "authenticator":
        lines.append(f"  context: {_shorten(description['context_hex'])}")
        for index, cert in enumerate(description["certificates"]):
            role = "leaf" if index == 0 else f"chain[{index}]"
            lines.append(f"  certificate {index} ({role}): {cert['subject']}")
            lines.append(f"    issuer: {cert['issuer']}")
            lines.append(f"    key: {cert['key_type']}")
            lines.append(f"    valid: {cert['not_valid_before']} .. {cert['not_valid_after']}")
            lines.append("    extensions:")
            lines.extend(_render_extensions(cert["extensions"], "      "))
        scheme = description["signature_scheme"]
        validity = "" if scheme["valid_for_tls13"] else " (NOT valid in TLS 1.3)"
        lines.append(f"  signature: {scheme['name']}{validity}")
    lines.append(f"  finished: {description['finished_hex']}")
    return "\n".join(lines)


def _decode_command(args: argparse.Namespace) -> int:
    try:
        data = _read_input(args.file)
        description = describe(data, hash_name=args.hash, headerless=args.headerless)
    except OSError as exc:
        print(f"attquic ea decode: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except AttquicError as exc:
        print(f"attquic ea decode: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        print(render_text(description))
    return 0
