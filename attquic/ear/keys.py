"""EAR signing and verification keys: load from JWK or PEM (objects, bytes or files), or generate.

Only EC keys (P-256/P-384/P-521, for ES256/ES384/ES512) are supported: an EAR is signed by a
verifier with an asymmetric key, never with a shared secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from attquic.errors import ConfigurationError

__all__ = [
    "KeySource",
    "generate_signing_key",
    "load_private_key",
    "load_public_key",
    "public_jwk",
]

#: What a key can be given as: a joserfc ECKey, a JWK dict, a ``cryptography`` EC key, PEM or
#: JWK-JSON bytes, or the path of a file holding PEM or a JWK.
KeySource: TypeAlias = (
    ECKey
    | Mapping[str, Any]
    | ec.EllipticCurvePublicKey
    | ec.EllipticCurvePrivateKey
    | bytes
    | str
    | os.PathLike[str]
)


def _import(source: KeySource) -> ECKey:
    if isinstance(source, ECKey):
        return source
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read key file {path}: {exc.strerror}") from None
        return _import(data)
    raw: Any
    if isinstance(source, bytes):
        stripped = source.strip()
        if stripped.startswith(b"{"):
            try:
                raw = json.loads(stripped)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ConfigurationError("key is neither PEM nor a JSON JWK") from None
        else:
            raw = stripped
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        raw = source
    try:
        return ECKey.import_key(raw)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"not a usable EC key: {exc}") from None


def load_public_key(source: KeySource) -> ECKey:
    """The public EC key in ``source`` (a private key yields its public half)."""
    key = _import(source)
    if key.is_private:
        key = ECKey.import_key(key.as_dict(private=False))
    return key


def load_private_key(source: KeySource) -> ECKey:
    """The private EC key in ``source``; a public-only key is a configuration error."""
    key = _import(source)
    if not key.is_private:
        raise ConfigurationError("a private key is required to sign EARs")
    return key


def generate_signing_key() -> ECKey:
    """A fresh P-256 key for ES256."""
    return ECKey.generate_key("P-256")


def public_jwk(key: ECKey, alg: str = "ES256") -> dict[str, Any]:
    """The public JWK of ``key`` with its ``alg`` (as Veraison's discovery endpoint shows it)."""
    out: dict[str, Any] = {"alg": alg}
    out.update(key.as_dict(private=False))
    return out
