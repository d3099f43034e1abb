"""TDX quotes from a real TDX guest through Linux configfs-tsm (``/sys/kernel/config/tsm/report``).

Per request (Linux >= 6.7, configfs mounted, root or CAP_SYS_ADMIN):

1. ``mkdir <root>/<unique name>``: the kernel populates the entry's attribute files;
2. ``provider`` must read ``tdx_guest`` (anything else is another TEE: refused);
3. read ``generation`` (g0), write exactly 64 bytes to ``inblob`` (our REPORTDATA);
4. read ``outblob``: the kernel asks the TDX module for a TD report and the host's quote
   service for the quote (may take seconds);
5. read ``generation`` again: it must be g0 + 1, otherwise another process wrote to the same
   entry and the quote may carry its REPORTDATA: retry with a fresh entry, a bounded number of
   times;
6. ``rmdir`` the entry, whatever happened.

All file operations go through :class:`TsmFilesystem` (default :class:`OsTsmFilesystem`) so that
tests can emulate the kernel. The blocking I/O runs in a worker thread
(:func:`anyio.to_thread.run_sync`), one request at a time per process.
"""

from __future__ import annotations

import errno
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import anyio.to_thread

from attquic import profile
from attquic.errors import AttesterUnavailable, ConfigurationError
from attquic.logs import get_logger

if TYPE_CHECKING:
    from attquic.cmw import CMW, CMWRecord
    from attquic.keyschedule import Binding

__all__ = [
    "DEFAULT_TSM_REPORT_ROOT",
    "REPORT_DATA_SIZE",
    "TDX_PROVIDER",
    "ConfigfsTsmAttester",
    "OsTsmFilesystem",
    "TsmFilesystem",
]

#: Where the kernel exposes configfs-tsm reports.
DEFAULT_TSM_REPORT_ROOT: Final = Path("/sys/kernel/config/tsm/report")
#: Value of an entry's ``provider`` attribute in a TDX guest.
TDX_PROVIDER: Final = "tdx_guest"
#: TDX takes exactly 64 bytes of inblob (the quote's REPORTDATA).
REPORT_DATA_SIZE: Final = 64
#: Upper bound on the outblob we accept (the kernel caps it at 32 KiB).
MAX_OUTBLOB_SIZE: Final = 1 << 20
_DEFAULT_MAX_ATTEMPTS: Final = 3

_T = TypeVar("_T")
_log = get_logger("attquic.tdx.configfs")
#: One configfs-tsm request at a time per process (the kernel serialises them anyway).
_PROCESS_LOCK = threading.Lock()


class TsmFilesystem(Protocol):
    """The file operations the attester performs (paths are absolute ``Path`` objects).

    Implementations raise :class:`OSError` with the kernel's ``errno`` on failure.
    """

    def is_dir(self, path: Path) -> bool:
        """Whether ``path`` exists and is a directory."""
        ...

    def mkdir(self, path: Path) -> None:
        """Create a report entry (the kernel populates its attributes)."""
        ...

    def rmdir(self, path: Path) -> None:
        """Remove a report entry."""
        ...

    def read(self, path: Path, limit: int) -> bytes:
        """Read a whole attribute, at most ``limit`` bytes."""
        ...

    def write(self, path: Path, data: bytes) -> None:
        """Write a whole attribute in one go (the kernel commits it on close)."""
        ...


class OsTsmFilesystem:
    """:class:`TsmFilesystem` on the real file system (plain ``os`` calls)."""

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def read(self, path: Path, limit: int) -> bytes:
        with open(path, "rb", buffering=0) as attribute:
            data = attribute.read(limit + 1)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"attribute larger than {limit} bytes", str(path))
        return data

    def write(self, path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)


def _unavailable(action: str, path: Path, exc: OSError) -> AttesterUnavailable:
    """Translate an OSError from configfs into a message that says what to do about it."""
    code = exc.errno
    if code == errno.ENOENT:
        hint = "not found (is this a TDX guest with Linux >= 6.7 and configfs mounted?)"
    elif code in (errno.EACCES, errno.EPERM):
        hint = "permission denied (configfs-tsm needs root or CAP_SYS_ADMIN)"
    elif code in (errno.EBUSY, errno.EAGAIN):
        hint = "busy (another quote request is in progress); try again"
    elif code == errno.EINVAL:
        hint = "invalid argument (the kernel refused the request)"
    elif code in (errno.EIO, errno.ETIMEDOUT, errno.ENXIO, errno.EINTR, errno.ECONNREFUSED):
        hint = "quote generation failed (is the host's quote generation service reachable?)"
    else:
        hint = exc.strerror or "failed"
    return AttesterUnavailable(f"configfs-tsm: cannot {action} {path}: {hint} [errno {code}]")


class ConfigfsTsmAttester:
    """An :class:`~attquic.attestation.Attester` for a real TDX guest, via configfs-tsm.

    ``batching`` (default on): toward peers that accept batched evidence, one quote covers
    every request queued while the previous quote was made (at most ``max_batch_size``,
    default 64), which lifts the host's ~25 quotes/s cap.

    Construction does no I/O; :meth:`check` probes the interface. :meth:`attest` and
    :meth:`get_quote` raise :class:`~attquic.errors.AttesterUnavailable` with a specific message
    when configfs-tsm is absent, is not TDX, is not permitted, is busy or fails, or when
    another writer kept interfering for ``max_attempts`` attempts.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = DEFAULT_TSM_REPORT_ROOT,
        *,
        filesystem: TsmFilesystem | None = None,
        max_attempts: int = _DEFAULT_MAX_ATTEMPTS,
        entry_prefix: str = "attquic",
        batching: bool = True,
        max_batch_size: int = profile.DEFAULT_MAX_BATCH_SIZE,
    ) -> None:
        from attquic.batching import EvidenceBatcher

        if max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if not entry_prefix or "/" in entry_prefix or entry_prefix.startswith("."):
            raise ConfigurationError(f"bad entry prefix {entry_prefix!r}")
        self._root = Path(root)
        self._fs: TsmFilesystem = filesystem if filesystem is not None else OsTsmFilesystem()
        self._max_attempts = max_attempts
        self._entry_prefix = entry_prefix
        self._batcher = (
            EvidenceBatcher(self.attest, max_batch_size=max_batch_size) if batching else None
        )

    @property
    def root(self) -> Path:
        """The configfs-tsm report directory this attester uses."""
        return self._root

    async def attest(self, binding: Binding) -> CMWRecord:
        """A quote whose REPORTDATA is ``binding.report_data``, in a CMW record (Evidence)."""
        from attquic.cmw import CMWRecord

        quote = await anyio.to_thread.run_sync(self.get_quote, binding.report_data)
        return CMWRecord(profile.TDX_QUOTE_MEDIA_TYPE, quote, profile.IND_EVIDENCE)

    async def attest_batched(self, binding: Binding) -> CMW:
        """For a peer that accepts batched evidence: one quote per batch of the requests that
        queued while the previous quote was made (:class:`~attquic.batching.EvidenceBatcher`);
        :meth:`attest` when batching is off."""
        if self._batcher is None:
            return await self.attest(binding)
        return await self._batcher.attest(binding)

    def check(self) -> None:
        """Raise :class:`~attquic.errors.AttesterUnavailable` unless configfs-tsm is TDX here.

        Creates and removes one entry; generates no quote.
        """
        with _PROCESS_LOCK:
            entry = self._create_entry()
            try:
                self._require_tdx_provider(entry)
            finally:
                self._remove_entry(entry)

    def get_quote(self, report_data: bytes) -> bytes:
        """Blocking: a TDX quote whose REPORTDATA is ``report_data`` (exactly 64 bytes)."""
        if len(report_data) != REPORT_DATA_SIZE:
            raise ConfigurationError(
                f"TDX report data must be exactly {REPORT_DATA_SIZE} bytes, got {len(report_data)}"
            )
        with _PROCESS_LOCK:
            for attempt in range(1, self._max_attempts + 1):
                quote = self._attempt(report_data, attempt)
                if quote is not None:
                    return quote
        raise AttesterUnavailable(
            f"configfs-tsm: another writer changed the report entry during each of "
            f"{self._max_attempts} attempts (generation counter skew); giving up"
        )

    def _attempt(self, report_data: bytes, attempt: int) -> bytes | None:
        """One request in a fresh entry; None if the generation counter shows interference."""
        entry = self._create_entry()
        try:
            self._require_tdx_provider(entry)
            before = self._read_generation(entry)
            self._io("write", entry / "inblob", lambda p: self._fs.write(p, report_data))
            quote = self._io("read", entry / "outblob", self._read_outblob)
            after = self._read_generation(entry)
        finally:
            self._remove_entry(entry)
        if after != before + 1:
            _log.warning(
                "configfs_tsm_generation_skew",
                entry=str(entry),
                expected=before + 1,
                observed=after,
                attempt=attempt,
            )
            return None
        if not quote:
            raise AttesterUnavailable(f"configfs-tsm: {entry / 'outblob'} returned no quote")
        return quote

    def _read_outblob(self, path: Path) -> bytes:
        return self._fs.read(path, MAX_OUTBLOB_SIZE)

    def _create_entry(self) -> Path:
        if not self._fs.is_dir(self._root):
            raise AttesterUnavailable(
                f"configfs-tsm not available: {self._root} is not a directory (needs a TDX "
                "guest with Linux >= 6.7 and configfs mounted at /sys/kernel/config)"
            )
        name = f"{self._entry_prefix}-{os.getpid()}-{secrets.token_hex(8)}"
        entry = self._root / name
        self._io("create", entry, self._fs.mkdir)
        return entry

    def _remove_entry(self, entry: Path) -> None:
        try:
            self._fs.rmdir(entry)
        except OSError as exc:  # never mask the original outcome; leave a trace instead
            _log.warning("configfs_tsm_rmdir_failed", entry=str(entry), error=str(exc))

    def _require_tdx_provider(self, entry: Path) -> None:
        raw = self._io("read", entry / "provider", lambda p: self._fs.read(p, 256))
        provider = raw.decode("ascii", errors="replace").strip()
        if provider != TDX_PROVIDER:
            raise AttesterUnavailable(
                f"configfs-tsm provider is {provider!r}, not {TDX_PROVIDER!r}: this is not a "
                "TDX guest"
            )

    def _read_generation(self, entry: Path) -> int:
        raw = self._io("read", entry / "generation", lambda p: self._fs.read(p, 64))
        text = raw.decode("ascii", errors="replace").strip()
        if not text.isdigit():
            raise AttesterUnavailable(f"configfs-tsm: unexpected generation value {text!r}")
        return int(text)

    @staticmethod
    def _io(action: str, path: Path, operation: Callable[[Path], _T]) -> _T:
        try:
            return operation(path)
        except OSError as exc:
            raise _unavailable(action, path, exc) from exc
