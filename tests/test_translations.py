"""Every translation key, error and abort reason the code uses exists in en.json."""

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any

import probatio
import pytest

from custom_components.private_voice import config_flow, options_flow

PACKAGE = Path(config_flow.__file__).parent
STRINGS: dict[str, Any] = json.loads(
    (PACKAGE / "translations" / "en.json").read_text(encoding="utf-8")
)
CONFIG: dict[str, Any] = STRINGS["config"]
# HA helpers that abort with a fixed reason.
IMPLIED_ABORTS = {
    "_abort_if_unique_id_configured": "already_configured",
    "async_update_reload_and_abort": "reconfigure_successful",
}
# The forms whose fields are fixed, by step.
STEP_SCHEMAS: dict[str, probatio.Schema] = {
    "user": config_flow.STEP_BASICS_SCHEMA,
    "reconfigure": config_flow.STEP_BASICS_SCHEMA,
    "zeroconf_confirm": config_flow.STEP_BASICS_SCHEMA,
    "remote": config_flow.STEP_REMOTE_SCHEMA,
    "services": config_flow.STEP_SERVICES_SCHEMA,
}


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


@dataclass
class UsedKeys:
    """What the source asks Home Assistant to translate."""

    step: set[str] = field(default_factory=set)
    abort: set[str] = field(default_factory=set)
    error: set[str] = field(default_factory=set)
    progress: set[str] = field(default_factory=set)
    translation_key: set[str] = field(default_factory=set)
    # Menu step: its options.
    menu: dict[str, list[str]] = field(default_factory=dict)


def _constant(node: ast.expr) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _used_keys(*sources: Path) -> UsedKeys:
    """Walk source files for the keys Home Assistant translates."""
    used = UsedKeys()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg}
                if (options := keywords.get("menu_options")) is not None:
                    assert isinstance(options, ast.List), "menu options: a literal"
                    step = _constant(keywords["step_id"])
                    used.menu[step] = [_constant(option) for option in options.elts]
            elif isinstance(node, ast.keyword) and (value := _constant(node.value)):
                kind = {
                    "step_id": used.step,
                    "reason": used.abort,
                    "progress_action": used.progress,
                    "translation_key": used.translation_key,
                }.get(node.arg or "")
                if kind is not None:
                    kind.add(value)
            elif isinstance(node, ast.Attribute) and node.attr in IMPLIED_ABORTS:
                used.abort.add(IMPLIED_ABORTS[node.attr])
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.targets[0].value, ast.Name)
                and node.targets[0].value.id == "errors"
                and isinstance(node.value, ast.Constant)
            ):
                used.error.add(node.value.value)
    return used


def _flow_keys() -> UsedKeys:
    """Collect what the config flow uses: the "config" section's keys."""
    return _used_keys(Path(config_flow.__file__))


def test_strings_are_full_text() -> None:
    """Custom integrations ship full text: no empty strings, no core references."""
    for path, value in _leaves(STRINGS):
        assert isinstance(value, str), path
        assert value.strip(), path
        assert "[%key:" not in value, path


def test_code_finds_keys() -> None:
    """The source walk itself works (guards the tests below)."""
    used = _flow_keys()
    assert {"user", "reconfigure", "local_models", "zeroconf_confirm"} <= used.step
    assert {"cannot_bind", "no_services"} <= used.error
    assert {"already_configured", "reconfigure_successful"} <= used.abort
    assert used.progress == {"install_engines", "download_models"}
    assert used.menu["engine"] == ["local", "remote", "services"]
    assert "wake_words" in used.translation_key


@pytest.mark.parametrize("kind", ["step", "abort", "error", "progress"])
def test_config_flow_keys_exist_and_are_used(kind: str) -> None:
    """Every step, abort reason, error and progress action has text, and no more."""
    assert set(CONFIG[kind]) == getattr(_flow_keys(), kind)


def test_menu_options_have_labels_and_descriptions() -> None:
    """Each menu option is named and explained."""
    for step, options in _flow_keys().menu.items():
        assert set(CONFIG["step"][step]["menu_options"]) == set(options), step
        assert set(CONFIG["step"][step]["menu_option_descriptions"]) == set(options)


def test_steps_have_titles() -> None:
    """Every step the user sees has a title."""
    for step, strings in CONFIG["step"].items():
        assert "title" in strings, step


@pytest.mark.parametrize(("step", "schema"), STEP_SCHEMAS.items())
def test_form_fields_have_labels(step: str, schema: probatio.Schema) -> None:
    """Every field of a fixed form has a label and a description."""
    strings = CONFIG["step"][step]
    fields = {str(key) for key in schema.schema}
    assert set(strings["data"]) == fields
    assert set(strings["data_description"]) == fields


def test_translation_keys_exist() -> None:
    """Every translation_key (entities, exceptions, selectors) has text somewhere."""
    defined = {
        path.split(".")[-2] for path, _ in _leaves(STRINGS) if path.count(".") >= 2
    }
    defined |= {
        path.split(".")[-3] for path, _ in _leaves(STRINGS) if path.count(".") >= 3
    }
    for key in _used_keys(*PACKAGE.rglob("*.py")).translation_key:
        assert key in defined, f"translation_key {key} has no text"


def test_wake_word_options_have_labels() -> None:
    """The wake word select's options are all labelled."""
    options = STRINGS["selector"]["wake_words"]["options"]
    assert set(options) == set(config_flow.MICRO_WAKE_WORDS)


def test_options_flow_keys_exist_and_are_used() -> None:
    """The options flow's steps and errors have text, and no more."""
    used = _used_keys(Path(options_flow.__file__))
    assert used.step == {"init"}
    assert set(STRINGS["options"]["step"]) == used.step
    assert set(STRINGS["options"]["error"]) == used.error
    strings = STRINGS["options"]["step"]["init"]
    fields = {str(key) for key in options_flow.STEP_OPTIONS_SCHEMA.schema}
    assert set(strings["data"]) == fields
    assert set(strings["data_description"]) == fields
