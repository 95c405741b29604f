"""The text-to-speech entity, speaking with piper on a real engine host.

What it says is checked by ear: the audio is transcribed back with the
entry's own speech-to-text (whisper tiny.en, which may miss a short word of
piper's noisy speech, so only the words that matter are checked).
"""

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
import io
import re
import wave

from homeassistant.components import stt, tts
from homeassistant.components.tts.helper import get_engine_instance
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.private_voice.const import DOMAIN
from custom_components.private_voice.engine_host.audio import ToEngineFormat
from custom_components.private_voice.engine_host.formats import PcmFormat
from custom_components.private_voice.protocol.client import Endpoint
from custom_components.private_voice.tts import PrivateVoiceTextToSpeech

from .engines import COMMAND, async_chunks, async_set_up, entity_id, remote_entry

WAV = {tts.ATTR_PREFERRED_FORMAT: "wav"}
VOICE = "en_US-joe-medium"


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """Keep what the test writes (the TTS cache) out of the shared config folder."""
    return hass_tmp_config_dir


@dataclass(frozen=True, slots=True)
class Voices:
    """The entry's entities: one speaks, the other listens to what it said."""

    tts: str
    stt: str


@pytest.fixture
async def voices(
    hass: HomeAssistant, engine_host_endpoint: Endpoint, free_port: int
) -> Voices:
    """Set up an entry on the engine host."""
    entry: MockConfigEntry = remote_entry(engine_host_endpoint, free_port)
    await async_set_up(hass, entry)
    return Voices(
        tts=entity_id(hass, entry, "tts", "tts"),
        stt=entity_id(hass, entry, "stt", "stt"),
    )


def words(text: str | None) -> list[str]:
    """Return the lower-case words of ``text``."""
    return re.findall(r"[a-z']+", (text or "").lower())


def pcm_of(wav_file: bytes) -> tuple[PcmFormat, bytes]:
    """Return the format and samples of a WAV file, streamed (length 0) or not."""
    with wave.open(io.BytesIO(wav_file), "rb") as reader:
        audio_format = PcmFormat(
            reader.getframerate(), reader.getsampwidth(), reader.getnchannels()
        )
    data = wav_file.index(b"data") + 8
    return audio_format, wav_file[data:]


async def heard(hass: HomeAssistant, voices: Voices, wav_file: bytes) -> list[str]:
    """Return the words the speech-to-text entity hears in ``wav_file``."""
    audio_format, pcm = pcm_of(wav_file)
    assert len(pcm) > audio_format.bytes_per_second  # more than a second of speech
    samples = ToEngineFormat(audio_format).convert(pcm).tobytes()
    entity = stt.async_get_speech_to_text_entity(hass, voices.stt)
    assert entity is not None
    result = await entity.async_process_audio_stream(
        stt.SpeechMetadata(
            language="en",
            format=stt.AudioFormats.WAV,
            codec=stt.AudioCodecs.PCM,
            bit_rate=stt.AudioBitRates.BITRATE_16,
            sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
            channel=stt.AudioChannels.CHANNEL_MONO,
        ),
        async_chunks(samples),
    )
    return words(result.text)


def tts_entity(hass: HomeAssistant, voices: Voices) -> PrivateVoiceTextToSpeech:
    """Return our text-to-speech entity object."""
    entity = get_engine_instance(hass, voices.tts)
    assert isinstance(entity, PrivateVoiceTextToSpeech)
    return entity


async def test_offers_the_voices_by_language(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, voices: Voices
) -> None:
    """Piper's en_US voice, as Home Assistant writes the language (en-US)."""
    client = await hass_ws_client(hass)

    await client.send_json_auto_id({"type": "tts/engine/get", "engine_id": voices.tts})
    engine = (await client.receive_json())["result"]["provider"]
    await client.send_json_auto_id(
        {"type": "tts/engine/voices", "engine_id": voices.tts, "language": "en-US"}
    )
    offered = (await client.receive_json())["result"]["voices"]

    assert engine["supported_languages"] == ["en-US"]
    assert offered == [{"voice_id": VOICE, "name": "joe (medium)"}]
    # The entry's language is "en": its closest match is the default.
    assert tts_entity(hass, voices).default_language == "en-US"


async def test_speaks_through_the_url_api(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, voices: Voices
) -> None:
    """A TTS URL from the API plays back the message."""
    client = await hass_client()

    response = await client.post(
        "/api/tts_get_url",
        json={"engine_id": voices.tts, "message": COMMAND, "options": WAV},
    )
    assert response.status == 200
    audio = await client.get((await response.json())["path"])
    assert audio.status == 200

    assert {"kitchen", "lights"} <= set(await heard(hass, voices, await audio.read()))
    assert hass.states.get(voices.tts).state not in ("unknown", "unavailable")


async def test_speaks_text_while_it_is_written(
    hass: HomeAssistant, voices: Voices
) -> None:
    """The first sentence is heard before the rest of the text exists.

    The text waits for the first audio: an entity that waited for the whole
    text before speaking would never finish.
    """
    stream = tts.async_create_stream(hass, voices.tts, options=WAV)
    assert stream.supports_streaming_input
    first_audio = asyncio.Event()

    async def written() -> AsyncGenerator[str]:
        yield "Good morning. "
        yield "The kitchen "
        await first_audio.wait()
        yield "lights are on."

    stream.async_set_message_stream(written())
    received = b""
    async with asyncio.timeout(60):
        async for data in stream.async_stream_result():
            received += data
            if len(received) > 44:  # past the WAV header
                first_audio.set()

    # The first and the last piece: the text written after the first audio
    # was spoken too. (Where the pieces meet depends on timing, and tiny.en
    # sometimes mishears the word spoken across it.)
    assert {"morning", "lights"} <= set(await heard(hass, voices, received))


async def test_speaks_in_one_request(hass: HomeAssistant, voices: Voices) -> None:
    """For engines that do not stream text: the whole message, one WAV file."""
    extension, data = await tts_entity(hass, voices).async_get_tts_audio(
        COMMAND, "en-US", {tts.ATTR_VOICE: VOICE}
    )

    assert extension == "wav"
    assert data is not None
    with wave.open(io.BytesIO(data), "rb") as reader:
        assert reader.getnframes() > reader.getframerate()  # over a second
    assert {"kitchen", "lights"} <= set(await heard(hass, voices, data))


@pytest.mark.parametrize(
    "options",
    [{tts.ATTR_VOICE: "en_US-nobody-low"}, {tts.ATTR_VOICE: VOICE, "speaker": "bob"}],
    ids=["voice", "speaker"],
)
async def test_unknown_voice_is_a_translated_error(
    hass: HomeAssistant, voices: Voices, options: dict[str, str]
) -> None:
    """The engine refuses a voice or speaker it does not have."""
    with pytest.raises(HomeAssistantError) as raised:
        await tts_entity(hass, voices).async_get_tts_audio(COMMAND, "en-US", options)

    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "text_to_speech_failed"
    assert "unknown-" in str(raised.value)
