"""ConfigfsTsmAttester against a fake configfs-tsm tree in tmp_path.

A plain directory does not grow attribute files on mkdir, so :class:`FakeTsmKernel` wraps the
real-file-system implementation and adds what the kernel does: populate an entry on mkdir,
count writes in ``generation``, and produce ``outblob`` from ``inblob``.
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest

from attquic.errors import AttesterUnavailable, ConfigurationError, LocalError
from attquic.tdx.configfs import (
    DEFAULT_TSM_REPORT_ROOT,
    TDX_PROVIDER,
    ConfigfsTsmAttester,
    OsTsmFilesystem,
)

_ATTRIBUTES = ("provider", "generation", "inblob", "outblob", "auxblob")


def fake_quote(inblob: bytes) -> bytes:
    """A stand-in quote that visibly depends on the inblob."""
    return b"QUOTE:" + inblob + hashlib.sha256(inblob).digest()


class FakeTsmKernel(OsTsmFilesystem):
    """Emulates the configfs-tsm kernel side on top of real files."""

    def __init__(self, provider: str = TDX_PROVIDER) -> None:
        self.provider = provider
        self.skewed_writes = 0
        """How many upcoming inblob writes another (simulated) process also writes to."""
        self.mkdirs: list[Path] = []
        self.rmdirs: list[Path] = []
        self.write_errno: int | None = None

    def mkdir(self, path: Path) -> None:
        super().mkdir(path)
        self.mkdirs.append(path)
        (path / "provider").write_text(self.provider + "\n")
        (path / "generation").write_text("0\n")
        for name in ("inblob", "outblob", "auxblob"):
            (path / name).write_bytes(b"")

    def rmdir(self, path: Path) -> None:
        # configfs removes the attributes with the entry; a plain directory must be emptied.
        for name in _ATTRIBUTES:
            (path / name).unlink(missing_ok=True)
        self.rmdirs.append(path)
        super().rmdir(path)

    def write(self, path: Path, data: bytes) -> None:
        if self.write_errno is not None:
            raise OSError(self.write_errno, "injected", str(path))
        if path.name == "inblob" and len(data) != 64:
            raise OSError(errno.EINVAL, "TDX inblob must be 64 bytes", str(path))
        super().write(path, data)
        generation_file = path.parent / "generation"
        bump = 1
        if self.skewed_writes:
            self.skewed_writes -= 1
            bump = 2  # another writer slipped in between
        generation = int(generation_file.read_text()) + bump
        generation_file.write_text(f"{generation}\n")
        (path.parent / "outblob").write_bytes(fake_quote(path.read_bytes()))


@pytest.fixture
def tsm_root(tmp_path: Path) -> Path:
    root = tmp_path / "tsm" / "report"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def kernel() -> FakeTsmKernel:
    return FakeTsmKernel()


def test_default_root_is_the_kernel_path() -> None:
    assert Path("/sys/kernel/config/tsm/report") == DEFAULT_TSM_REPORT_ROOT
    assert ConfigfsTsmAttester().root == DEFAULT_TSM_REPORT_ROOT


def test_happy_path_returns_outblob_and_removes_entry(
    tsm_root: Path, kernel: FakeTsmKernel
) -> None:
    attester = ConfigfsTsmAttester(tsm_root, filesystem=kernel)
    report_data = bytes(range(64))
    assert attester.get_quote(report_data) == fake_quote(report_data)
    assert len(kernel.mkdirs) == 1
    assert kernel.rmdirs == kernel.mkdirs
    assert list(tsm_root.iterdir()) == []
    assert kernel.mkdirs[0].parent == tsm_root
    assert kernel.mkdirs[0].name.startswith("attquic-")


def test_each_request_uses_a_fresh_entry(tsm_root: Path, kernel: FakeTsmKernel) -> None:
    attester = ConfigfsTsmAttester(tsm_root, filesystem=kernel)
    attester.get_quote(bytes(64))
    attester.get_quote(bytes(64))
    assert len(set(kernel.mkdirs)) == 2


@pytest.mark.anyio
async def test_attest_wraps_quote_in_cmw(tsm_root: Path, kernel: FakeTsmKernel) -> None:
    from attquic import cmw, profile
    from attquic.keyschedule import Binding

    binding = Binding(hash_name="sha256", binding=bytes(32), aik_pub_hash=bytes(32))
    record = await ConfigfsTsmAttester(tsm_root, filesystem=kernel).attest(binding)
    assert record == cmw.CMWRecord(
        profile.TDX_QUOTE_MEDIA_TYPE, fake_quote(binding.report_data), profile.IND_EVIDENCE
    )
    assert list(tsm_root.iterdir()) == []


def test_absent_root(tmp_path: Path) -> None:
    attester = ConfigfsTsmAttester(tmp_path / "no-such-dir")
    with pytest.raises(AttesterUnavailable, match="configfs-tsm not available"):
        attester.get_quote(bytes(64))
    with pytest.raises(AttesterUnavailable, match="configfs-tsm not available"):
        attester.check()


def test_plain_directory_is_not_configfs(tsm_root: Path) -> None:
    """The real-OS implementation on a directory where mkdir creates no attributes."""
    attester = ConfigfsTsmAttester(tsm_root)
    with pytest.raises(AttesterUnavailable, match="provider") as info:
        attester.get_quote(bytes(64))
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert list(tsm_root.iterdir()) == []  # the entry was removed


@pytest.mark.parametrize("provider", ["sev_guest", "arm_cca_guest", ""])
def test_wrong_provider(tsm_root: Path, provider: str) -> None:
    kernel = FakeTsmKernel(provider=provider)
    attester = ConfigfsTsmAttester(tsm_root, filesystem=kernel)
    with pytest.raises(AttesterUnavailable, match="not a TDX guest"):
        attester.get_quote(bytes(64))
    with pytest.raises(AttesterUnavailable, match="not a TDX guest"):
        attester.check()
    assert list(tsm_root.iterdir()) == []


def test_check_accepts_tdx(tsm_root: Path, kernel: FakeTsmKernel) -> None:
    ConfigfsTsmAttester(tsm_root, filesystem=kernel).check()
    assert kernel.rmdirs == kernel.mkdirs
    assert list(tsm_root.iterdir()) == []


def test_generation_skew_is_retried(tsm_root: Path, kernel: FakeTsmKernel) -> None:
    kernel.skewed_writes = 2
    attester = ConfigfsTsmAttester(tsm_root, filesystem=kernel, max_attempts=3)
    assert attester.get_quote(bytes(64)) == fake_quote(bytes(64))
    assert len(kernel.mkdirs) == 3
    assert kernel.rmdirs == kernel.mkdirs
    assert list(tsm_root.iterdir()) == []


def test_generation_skew_gives_up_after_max_attempts(tsm_root: Path, kernel: FakeTsmKernel) -> None:
    kernel.skewed_writes = 100
    attester = ConfigfsTsmAttester(tsm_root, filesystem=kernel, max_attempts=3)
    with pytest.raises(AttesterUnavailable, match="another writer"):
        attester.get_quote(bytes(64))
    assert len(kernel.mkdirs) == 3
    assert list(tsm_root.iterdir()) == []


@pytest.mark.parametrize("length", [0, 32, 63, 65, 128])
def test_inblob_must_be_64_bytes(tsm_root: Path, kernel: FakeTsmKernel, length: int) -> None:
    attester = ConfigfsTsmAttester(tsm_root, filesystem=kernel)
    with pytest.raises(ConfigurationError, match="exactly 64 bytes"):
        attester.get_quote(bytes(length))
    assert kernel.mkdirs == []  # refused before touching configfs


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EBUSY, "busy"),
        (errno.EACCES, "permission denied"),
        (errno.EIO, "quote generation failed"),
        (errno.EINVAL, "invalid argument"),
    ],
)
def test_kernel_errors_are_explained(
    tsm_root: Path, kernel: FakeTsmKernel, code: int, message: str
) -> None:
    kernel.write_errno = code
    attester = ConfigfsTsmAttester(tsm_root, filesystem=kernel)
    with pytest.raises(AttesterUnavailable, match=message) as info:
        attester.get_quote(bytes(64))
    assert isinstance(info.value, LocalError)
    assert isinstance(info.value.__cause__, OSError)
    assert list(tsm_root.iterdir()) == []


def test_mkdir_permission_denied(tsm_root: Path) -> None:
    class NoPermission(FakeTsmKernel):
        def mkdir(self, path: Path) -> None:
            raise PermissionError(errno.EACCES, "denied", str(path))

    attester = ConfigfsTsmAttester(tsm_root, filesystem=NoPermission())
    with pytest.raises(AttesterUnavailable, match="permission denied"):
        attester.get_quote(bytes(64))


def test_garbled_generation(tsm_root: Path) -> None:
    class Garbled(FakeTsmKernel):
        def mkdir(self, path: Path) -> None:
            super().mkdir(path)
            (path / "generation").write_text("soon\n")

    attester = ConfigfsTsmAttester(tsm_root, filesystem=Garbled())
    with pytest.raises(AttesterUnavailable, match="generation"):
        attester.get_quote(bytes(64))
    assert list(tsm_root.iterdir()) == []


def test_empty_outblob(tsm_root: Path) -> None:
    class NoQuote(FakeTsmKernel):
        def write(self, path: Path, data: bytes) -> None:
            super().write(path, data)
            (path.parent / "outblob").write_bytes(b"")

    attester = ConfigfsTsmAttester(tsm_root, filesystem=NoQuote())
    with pytest.raises(AttesterUnavailable, match="no quote"):
        attester.get_quote(bytes(64))


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"entry_prefix": "a/b"}])
def test_bad_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ConfigfsTsmAttester(**kwargs)  # type: ignore[arg-type]
