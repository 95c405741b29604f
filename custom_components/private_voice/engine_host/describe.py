"""What ``describe`` answers: the installed engines, models, voices and wake words."""

from typing import TYPE_CHECKING, Any

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Info,
    TtsProgram,
    TtsVoice,
    TtsVoiceSpeaker,
    WakeModel,
    WakeProgram,
)

from .engines import ModelInfo

if TYPE_CHECKING:
    from .server import Engines


def _artifact(info: ModelInfo, version: str | None = None) -> dict[str, Any]:
    """Return the fields every Wyoming artifact has; each is installed."""
    return {
        "name": info.name,
        "description": info.description,
        "attribution": Attribution(
            name=info.attribution_name, url=info.attribution_url
        ),
        "installed": True,
        "version": info.version or version,
    }


def build_info(engines: Engines, version: str) -> Info:
    """Describe what is installed, truthfully.

    Wyoming has no field for voice prints: with a speaker encoder, the speech
    to text program's description says they can be asked for.
    """
    info = Info()
    if (stt := engines.stt) is not None:
        program = _artifact(stt.PROGRAM, version)
        if (speaker := engines.speaker) is not None:
            program["description"] += (
                f"; voice prints on request ({speaker.PROGRAM.name}: "
                'transcribe context {"voice_print": true})'
            )
        info.asr.append(
            AsrProgram(
                **program,
                supports_transcript_streaming=True,
                models=[
                    AsrModel(**_artifact(model), languages=model.languages)
                    for model in stt.models
                ],
            )
        )
    if (tts := engines.tts) is not None:
        info.tts.append(
            TtsProgram(
                **_artifact(tts.PROGRAM, version),
                supports_synthesize_streaming=True,
                voices=[
                    TtsVoice(
                        **_artifact(voice),
                        languages=voice.languages,
                        speakers=[TtsVoiceSpeaker(name=s) for s in voice.speakers]
                        or None,
                    )
                    for voice in tts.voices
                ],
            )
        )
    info.wake.extend(
        WakeProgram(
            **_artifact(wake.PROGRAM, version),
            models=[
                WakeModel(
                    **_artifact(model), languages=model.languages, phrase=model.phrase
                )
                for model in wake.models
            ],
        )
        for wake in engines.wake
    )
    return info
