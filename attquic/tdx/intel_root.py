"""The Intel SGX Root CA: the only trust anchor for real TDX quotes, pinned by fingerprint.

The certificate is public (Intel publishes it as
``Intel_SGX_Provisioning_Certification_RootCA.cer``; dcap-qvl builds the same bytes into its
wheel). It is embedded here as text and checked against its SHA-256 fingerprint at import and
before use, so a modified copy fails closed instead of becoming a new trust anchor. The root
certificate carried inside a quote is never trusted on its own.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

from attquic.errors import LocalError

__all__ = [
    "INTEL_SGX_ROOT_CA_PEM",
    "INTEL_SGX_ROOT_CA_SHA256",
    "RootCertificateMismatch",
    "intel_sgx_root_ca_der",
]

INTEL_SGX_ROOT_CA_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
"""SHA-256 of the DER certificate (hex)."""

# CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US; ECDSA P-256;
# valid 2018-05-21T10:45:10Z .. 2049-12-31T23:59:59Z.
INTEL_SGX_ROOT_CA_PEM = """\
-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----
"""


class RootCertificateMismatch(LocalError):
    """The embedded root certificate does not match its pinned fingerprint (never expected)."""


@functools.cache
def intel_sgx_root_ca_der() -> bytes:
    """The Intel SGX Root CA as DER, after checking its pinned SHA-256 fingerprint.

    Raises :class:`RootCertificateMismatch` (fail closed) if the embedded text was altered.
    """
    body = "".join(
        line for line in INTEL_SGX_ROOT_CA_PEM.splitlines() if line and not line.startswith("-----")
    )
    der = base64.b64decode(body, validate=True)
    if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), INTEL_SGX_ROOT_CA_SHA256):
        raise RootCertificateMismatch("embedded Intel SGX Root CA does not match its fingerprint")
    return der


# Fail at import, not at the first verification, if the anchor was tampered with.
intel_sgx_root_ca_der()
