"""The catalogue of sensitive actions: which service calls need an allowed person."""

import pytest

from custom_components.private_voice.privacy.sensitive import (
    ALL_SENSITIVE_ACTIONS,
    SensitiveAction,
    personal_data,
    sensitive_action,
    service_called,
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Skip Home Assistant: the catalogue is pure."""


@pytest.fixture(autouse=True)
def setup_core() -> None:
    """Skip Home Assistant: the catalogue is pure."""


@pytest.mark.parametrize(
    ("entity_domain", "call", "position", "expected"),
    [
        # Home Assistant's on/off intents call the generic services.
        ("lock", ("homeassistant", "turn_off"), None, ("lock", "unlock")),
        ("lock", ("homeassistant", "turn_on"), None, ("lock", "lock")),
        ("lock", ("homeassistant", "toggle"), None, ("lock", "unlock")),
        ("cover", ("homeassistant", "turn_on"), None, ("cover", "open_cover")),
        ("cover", ("homeassistant", "turn_off"), None, ("cover", "close_cover")),
        ("cover", ("homeassistant", "toggle"), None, ("cover", "open_cover")),
        ("camera", ("homeassistant", "turn_off"), None, ("camera", "turn_off")),
        ("camera", ("homeassistant", "toggle"), None, ("camera", "turn_off")),
        ("light", ("homeassistant", "turn_on"), None, ("light", "turn_on")),
        ("switch", ("homeassistant", "toggle"), None, ("switch", "turn_off")),
        # The cover intents call the cover's own.
        ("cover", ("cover", "open_cover"), None, ("cover", "open_cover")),
        ("cover", ("cover", "set_cover_position"), 40, ("cover", "open_cover")),
        ("cover", ("cover", "set_cover_position"), 0, ("cover", "close_cover")),
        ("lock", ("lock", "open"), None, ("lock", "open")),
    ],
)
def test_service_called(
    entity_domain: str,
    call: tuple[str, str],
    position: float | None,
    expected: tuple[str, str],
) -> None:
    """A generic or intent service call ends as the entity's own service."""
    assert service_called(entity_domain, *call, position=position) == expected


@pytest.mark.parametrize(
    ("call", "device_class", "mute_switch", "expected"),
    [
        (("lock", "unlock"), None, False, SensitiveAction.LOCK_UNLOCK),
        (("lock", "open"), None, False, SensitiveAction.LOCK_OPEN),
        (("lock", "lock"), None, False, None),
        (
            ("alarm_control_panel", "alarm_disarm"),
            None,
            False,
            SensitiveAction.ALARM_DISARM,
        ),
        (("alarm_control_panel", "alarm_arm_away"), None, False, None),
        (("cover", "open_cover"), "garage", False, SensitiveAction.COVER_OPEN_GARAGE),
        (("cover", "toggle"), "garage", False, SensitiveAction.COVER_OPEN_GARAGE),
        (("cover", "open_cover"), "door", False, SensitiveAction.COVER_OPEN_DOOR),
        (("cover", "open_cover"), "gate", False, SensitiveAction.COVER_OPEN_GATE),
        (("cover", "close_cover"), "garage", False, None),
        (("cover", "open_cover"), "awning", False, None),
        (("cover", "open_cover"), "shade", False, None),
        (("cover", "open_cover"), None, False, None),
        (("camera", "turn_off"), None, False, SensitiveAction.CAMERA_OFF),
        (("camera", "turn_on"), None, False, None),
        (("switch", "turn_off"), None, True, SensitiveAction.MICROPHONE_UNMUTE),
        (("switch", "turn_off"), "outlet", False, None),
        (("switch", "turn_on"), None, True, None),
        (("light", "turn_on"), None, False, None),
    ],
)
def test_catalogue(
    call: tuple[str, str],
    device_class: str | None,
    mute_switch: bool,  # noqa: FBT001 - a parameter of the table
    expected: SensitiveAction | None,
) -> None:
    """Each kind is found from its service call and the entity's class."""
    assert (
        sensitive_action(
            *call, device_class, ALL_SENSITIVE_ACTIONS, mute_switch=mute_switch
        )
        == expected
    )


def test_only_the_users_list_counts() -> None:
    """A kind the user took off the list is not sensitive; the others still are."""
    enabled = ALL_SENSITIVE_ACTIONS - {SensitiveAction.COVER_OPEN_GARAGE}
    assert sensitive_action("cover", "open_cover", "garage", enabled) is None
    assert (
        sensitive_action("lock", "unlock", None, enabled) is SensitiveAction.LOCK_UNLOCK
    )
    assert sensitive_action("lock", "unlock", None, frozenset()) is None


def test_keys_are_stable() -> None:
    """The keys are stored in options: they are the documented ones."""
    assert {str(action) for action in ALL_SENSITIVE_ACTIONS} == {
        "lock_unlock",
        "lock_open",
        "alarm_disarm",
        "cover_open_garage",
        "cover_open_door",
        "cover_open_gate",
        "camera_off",
        "microphone_unmute",
    }


def test_personal_data() -> None:
    """Where people are is personal; a light is not."""
    assert personal_data("person")
    assert personal_data("device_tracker")
    assert not personal_data("light")
    assert not personal_data("lock")
