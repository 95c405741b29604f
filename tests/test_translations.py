"""Every translation key, error and abort reason the code uses exists in en.json."""

import ast
from collections.abc import Iterator
import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.private_voice import config_flow

PACKAGE = Path(config_flow.__file__).parent
STRINGS: dict[str, Any] = json.loads(
    (PACKAGE / "translations" / "en.json").read_text(encoding="utf-8")
)
# HA helpers that abort with a fixed reason.
IMPLIED_ABORTS = {"_abort_if_unique_id_configured": "already_configured"}


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


def _used_keys() -> dict[str, set[str]]:
    """Walk the integration's source for the keys Home Assistant translates."""
    used: dict[str, set[str]] = {
        "step": set(),
        "abort": set(),
        "error": set(),
        "translation_key": set(),
    }
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and isinstance(node.value, ast.Constant):
                kind = {"step_id": "step", "reason": "abort"}.get(node.arg or "")
                if kind is None and node.arg == "translation_key":
                    kind = "translation_key"
                if kind:
                    used[kind].add(node.value.value)
            elif isinstance(node, ast.Attribute) and node.attr in IMPLIED_ABORTS:
                used["abort"].add(IMPLIED_ABORTS[node.attr])
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.targets[0].value, ast.Name)
                and node.targets[0].value.id == "errors"
                and isinstance(node.value, ast.Constant)
            ):
                used["error"].add(node.value.value)
    return used


def test_strings_are_full_text() -> None:
    """Custom integrations ship full text: no empty strings, no core references."""
    for path, value in _leaves(STRINGS):
        assert isinstance(value, str), path
        assert value.strip(), path
        assert "[%key:" not in value, path


def test_code_finds_keys() -> None:
    """The source walk itself works (guards the tests below)."""
    used = _used_keys()
    assert "user" in used["step"]
    assert "cannot_bind" in used["error"]
    assert "already_configured" in used["abort"]


@pytest.mark.parametrize("kind", ["step", "abort", "error"])
def test_config_flow_keys_exist(kind: str) -> None:
    """Every step, abort reason and error the flows use has text."""
    for key in _used_keys()[kind]:
        assert key in STRINGS["config"][kind], f"config.{kind}.{key} is missing"


def test_translation_keys_exist() -> None:
    """Every translation_key (entities, exceptions, issues) has text somewhere."""
    defined = {
        path.split(".")[-2] for path, _ in _leaves(STRINGS) if path.count(".") >= 2
    }
    defined |= {
        path.split(".")[-3] for path, _ in _leaves(STRINGS) if path.count(".") >= 3
    }
    for key in _used_keys()["translation_key"]:
        assert key in defined, f"translation_key {key} has no text"


def test_user_step_fields_have_labels() -> None:
    """Every field of the user form has a label and a description."""
    step = STRINGS["config"]["step"]["user"]
    fields = {str(key) for key in config_flow.STEP_USER_SCHEMA.schema}
    assert set(step["data"]) == fields
    assert set(step["data_description"]) == fields
