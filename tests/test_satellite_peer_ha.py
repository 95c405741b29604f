"""Home Assistant with the real wyoming-satellite: a spoken command, end to end.

wyoming-satellite 1.0.0 runs as a subprocess (tests/satellite_peer.py),
streaming its microphone all the time: Private Voice's wake word engine hears
"Okay Nabu", the Assist pipeline the command; the light turns on and the
spoken reply lands in the satellite's speaker file. The engines are the
session's engine host.
"""

from pathlib import Path

from homeassistant.components import stt
from homeassistant.components.assist_satellite.entity import AssistSatelliteState
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.event import async_track_state_change_event
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.private_voice.const import SUBENTRY_SATELLITE
from custom_components.private_voice.engine_host.audio import ToEngineFormat
from custom_components.private_voice.engine_host.formats import PcmFormat

from .conftest import KITCHEN_LIGHT
from .engines import COMMAND, WAKE_PHRASE, async_chunks, entity_id, silence
from .satellite_peer import (
    NAME,
    SND_RATE,
    SatellitePeer,
    requires_satellite_peer,
    running_satellite,
)
from .test_assist_satellite import (  # noqa: F401 - fixtures, imported
    command_audio,
    entry,
    hass_config_dir,
    satellite_entity,
)
from .test_stt import metadata
from .waiting import until

SPEAKER = PcmFormat(SND_RATE, 2, 1)
# The run's stages, the reply's wait for a "played" that never comes, and the
# engines on two busy cores: this only catches a hang.
WITHIN = 90.0


async def _add(
    hass: HomeAssistant, config_entry: MockConfigEntry, peer: SatellitePeer
) -> str:
    """Add the satellite as the UI does; return its subentry id."""
    result = await hass.config_entries.subentries.async_init(
        (config_entry.entry_id, SUBENTRY_SATELLITE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_HOST: peer.endpoint.host, CONF_PORT: peer.endpoint.port},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    [subentry] = config_entry.subentries.values()
    assert subentry.title == NAME
    return subentry.subentry_id


async def _transcribe(
    hass: HomeAssistant, config_entry: MockConfigEntry, pcm: bytes
) -> str:
    """Hear what the satellite played, with the entry's own speech-to-text."""
    provider = stt.async_get_speech_to_text_entity(
        hass, entity_id(hass, config_entry, "stt", "stt")
    )
    assert provider is not None
    audio = ToEngineFormat(SPEAKER).convert(pcm).tobytes()
    result = await provider.async_process_audio_stream(
        metadata(), async_chunks(silence(0.3) + audio + silence(0.5))
    )
    assert result.result is stt.SpeechResultState.SUCCESS
    return (result.text or "").lower()


@requires_satellite_peer
@pytest.mark.usefixtures("kitchen_light")
async def test_spoken_command_at_real_satellite_turns_on_the_light(
    hass: HomeAssistant,
    entry: MockConfigEntry,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """Wake word and command at wyoming-satellite: light on, reply played, idle."""
    said = command_audio(WAKE_PHRASE, COMMAND)
    states: list[str] = []

    async with running_satellite(tmp_path, said) as peer:
        subentry_id = await _add(hass, entry, peer)
        entity = satellite_entity(hass, subentry_id)

        @callback
        def _record(event: Event[EventStateChangedData]) -> None:
            if (state := event.data["new_state"]) is not None:
                states.append(state.state)

        unsubscribe = async_track_state_change_event(hass, entity, _record)
        try:
            await until(lambda: hass.states.get(entity).state != STATE_UNAVAILABLE)
            # It streams from run-satellite on, and asked for its one run.
            peer.start_speaking()
            await until(
                lambda: hass.states.get(KITCHEN_LIGHT).state == STATE_ON,
                within=WITHIN,
            )
            await until(
                lambda: (
                    AssistSatelliteState.RESPONDING in states
                    and hass.states.get(entity).state == AssistSatelliteState.IDLE
                ),
                within=WITHIN,
            )
        finally:
            unsubscribe()
        played = peer.played()

    # Its one run went through every stage, and ended idle.
    stages = [
        AssistSatelliteState.LISTENING,
        AssistSatelliteState.PROCESSING,
        AssistSatelliteState.RESPONDING,
        AssistSatelliteState.IDLE,
    ]
    assert [state for state in states if state in stages][-4:] == stages
    # The spoken reply, at the speaker's rate: a sentence, not a click.
    assert len(played) % SPEAKER.frame_bytes == 0
    seconds = len(played) / SPEAKER.bytes_per_second
    assert 0.5 < seconds < 10.0
    assert np.abs(np.frombuffer(played, dtype=np.int16)).max() > 1000
    assert "light" in await _transcribe(hass, entry, played)
