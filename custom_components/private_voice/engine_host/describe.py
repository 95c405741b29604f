"""What ``describe`` answers: the installed engines, models, voices and wake words."""

from typing import TYPE_CHECKING

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


def _attribution(info: ModelInfo) -> Attribution:
    return Attribution(name=info.attribution_name, url=info.attribution_url)


def build_info(engines: Engines, version: str) -> Info:
    """Describe what is installed, truthfully: nothing is listed that cannot run."""
    info = Info()
    if (stt := engines.stt) is not None:
        program = stt.PROGRAM
        info.asr.append(
            AsrProgram(
                name=program.name,
                description=program.description,
                attribution=_attribution(program),
                installed=True,
                version=program.version or version,
                supports_transcript_streaming=True,
                models=[
                    AsrModel(
                        name=model.name,
                        description=model.description,
                        attribution=_attribution(model),
                        installed=True,
                        version=model.version,
                        languages=model.languages,
                    )
                    for model in stt.models
                ],
            )
        )
    if (tts := engines.tts) is not None:
        program = tts.PROGRAM
        info.tts.append(
            TtsProgram(
                name=program.name,
                description=program.description,
                attribution=_attribution(program),
                installed=True,
                version=program.version or version,
                supports_synthesize_streaming=True,
                voices=[
                    TtsVoice(
                        name=voice.name,
                        description=voice.description,
                        attribution=_attribution(voice),
                        installed=True,
                        version=voice.version,
                        languages=voice.languages,
                        speakers=[TtsVoiceSpeaker(name=s) for s in voice.speakers]
                        or None,
                    )
                    for voice in tts.voices
                ],
            )
        )
    for wake in engines.wake:
        program = wake.PROGRAM
        info.wake.append(
            WakeProgram(
                name=program.name,
                description=program.description,
                attribution=_attribution(program),
                installed=True,
                version=program.version or version,
                models=[
                    WakeModel(
                        name=model.name,
                        description=model.description,
                        attribution=_attribution(model),
                        installed=True,
                        version=model.version,
                        languages=model.languages,
                        phrase=model.phrase,
                    )
                    for model in wake.models
                ],
            )
        )
    return info
