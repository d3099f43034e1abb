"""docs/api.md covers the public API: every exported name has its own section with an example."""

from __future__ import annotations

import re
from pathlib import Path

import attquic
import attquic.logs
import attquic.simulated

API = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _sections() -> dict[str, str]:
    """``### `name` `` sections of docs/api.md, by name."""
    text = API.read_text()
    parts = re.split(r"^### `([^`]+)`\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_name_in_attquic_all_has_a_section_with_an_example() -> None:
    sections = _sections()
    names = [f"attquic.{n}" if n == "simulated" else n for n in attquic.__all__]
    missing = [name for name in names if name not in sections]
    assert missing == [], f"docs/api.md has no '### `name`' section for {missing}"
    for name in names:
        assert "```python" in sections[name], f"the section of {name} has no example"


def test_simulated_and_logs_names_are_documented() -> None:
    text = API.read_text()
    sections = _sections()
    for name in attquic.simulated.__all__:
        assert f"{name}(" in sections["attquic.simulated"], name
    for name in attquic.logs.__all__:
        assert f"attquic.logs.{name}" in text or f"logs.{name}" in text, name


def test_api_examples_are_valid_python() -> None:
    """Each example compiles (as the body of an async function: they are fragments of one)."""
    text = API.read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) >= len(attquic.__all__)
    for block in blocks:
        lines = block.splitlines()
        if lines[0].startswith("except"):  # a handler shown alone: give it its try
            lines = ["try:", "    pass", *lines]
        body = "\n".join("    " + line for line in lines)
        compile(f"async def example():\n{body}\n", "docs/api.md", "exec")
