"""What can be downloaded: whisper models, piper voices, the voice encoder.

faster-whisper models and piper voices are on Hugging Face; the voice
encoder's weights are one file of a wheel on PyPI.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
import math
import re
from typing import Any, Final

from .hub import Checksum, RemoteFile

REVISION: Final = "main"
PIPER_REPO: Final = "rhasspy/piper-voices"
PIPER_INDEX: Final = "voices.json"


class ModelKind(StrEnum):
    """Which engine a model is for; the value is its folder in the models dir."""

    WHISPER = "faster-whisper"
    PIPER = "piper"
    # Speaker encoders for voice prints: <name>.pt (a torch file, read without torch).
    VOICE_ENCODER = "voice-encoder"


# The voice encoder the engine host uses when none is named: Resemblyzer's.
VOICE_ENCODER_NAME: Final = "resemblyzer-ge2e"


class Speed(StrEnum):
    """Where a model sits between fast and accurate on a small CPU.

    For piper voices this follows the voice's quality: x_low and low are fast,
    medium balanced, high accurate (and slowest).
    """

    FAST = "fast"
    BALANCED = "balanced"
    ACCURATE = "accurate"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveMember:
    """The one file a download keeps from a zip archive (a wheel)."""

    path: str
    # Its size once extracted, exactly.
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogueEntry:
    """A model that can be downloaded, and what it is good for."""

    kind: ModelKind
    name: str
    # The Hugging Face repository the files are in (voice encoder: the
    # project's source repository, for reference; its file has a URL).
    repo: str
    description: str
    # Empty for a voice encoder: a voice print does not depend on the language.
    languages: tuple[str, ...]
    # Approximate download size, in MB (10**6 bytes).
    size_mb: int
    speed: Speed
    # Piper: the voice's .onnx.json and .onnx, from voices.json. faster-whisper:
    # empty, the repository is listed when the download starts. Voice encoder:
    # the archive that holds ``member``.
    files: tuple[RemoteFile, ...] = ()
    # What is installed is this member of the only file, not the file itself.
    member: ArchiveMember | None = None
    # SPDX identifier of the model's licence, and whom it credits, where the
    # catalogue records them.
    licence: str | None = None
    attribution: str | None = None


# faster_whisper.tokenizer's codes: every multilingual Whisper model knows the
# first 99; large-v3 (and turbo, made from it) added Cantonese.
_WHISPER_CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr"
    " gl gu ha haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt"
    " lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl"
    " sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh"
)
WHISPER_LANGUAGES: Final = tuple(_WHISPER_CODES.split())
WHISPER_V3_LANGUAGES: Final = (*WHISPER_LANGUAGES, "yue")


def _whisper(
    name: str, repo: str, size_mb: int, speed: Speed, languages: tuple[str, ...]
) -> CatalogueEntry:
    scope = "English only" if languages == ("en",) else "multilingual"
    return CatalogueEntry(
        kind=ModelKind.WHISPER,
        name=name,
        repo=repo,
        description=f"Whisper {name} ({scope})",
        languages=languages,
        size_mb=size_mb,
        speed=speed,
    )


_EN: Final = ("en",)
_ALL: Final = WHISPER_LANGUAGES
_V3: Final = WHISPER_V3_LANGUAGES

# The repositories faster-whisper 1.2.1 itself downloads (utils._MODELS), less
# the aliases "large" and "large-v3-turbo". Distil-Whisper models are English
# only, with or without ".en".
WHISPER_CATALOGUE: Final = (
    _whisper("tiny.en", "Systran/faster-whisper-tiny.en", 75, Speed.FAST, _EN),
    _whisper("tiny", "Systran/faster-whisper-tiny", 75, Speed.FAST, _ALL),
    _whisper("base.en", "Systran/faster-whisper-base.en", 145, Speed.FAST, _EN),
    _whisper("base", "Systran/faster-whisper-base", 145, Speed.FAST, _ALL),
    _whisper("small.en", "Systran/faster-whisper-small.en", 484, Speed.BALANCED, _EN),
    _whisper("small", "Systran/faster-whisper-small", 484, Speed.BALANCED, _ALL),
    _whisper(
        "distil-small.en",
        "Systran/faster-distil-whisper-small.en",
        332,
        Speed.BALANCED,
        _EN,
    ),
    _whisper(
        "distil-medium.en",
        "Systran/faster-distil-whisper-medium.en",
        789,
        Speed.BALANCED,
        _EN,
    ),
    _whisper(
        "medium.en", "Systran/faster-whisper-medium.en", 1530, Speed.ACCURATE, _EN
    ),
    _whisper("medium", "Systran/faster-whisper-medium", 1530, Speed.ACCURATE, _ALL),
    _whisper("large-v1", "Systran/faster-whisper-large-v1", 3090, Speed.ACCURATE, _ALL),
    _whisper("large-v2", "Systran/faster-whisper-large-v2", 3090, Speed.ACCURATE, _ALL),
    _whisper("large-v3", "Systran/faster-whisper-large-v3", 3090, Speed.ACCURATE, _V3),
    _whisper(
        "distil-large-v2",
        "Systran/faster-distil-whisper-large-v2",
        1510,
        Speed.ACCURATE,
        _EN,
    ),
    _whisper(
        "distil-large-v3",
        "Systran/faster-distil-whisper-large-v3",
        1510,
        Speed.ACCURATE,
        _EN,
    ),
    _whisper(
        "distil-large-v3.5",
        "distil-whisper/distil-large-v3.5-ct2",
        1510,
        Speed.ACCURATE,
        _EN,
    ),
    _whisper(
        "turbo",
        "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
        1620,
        Speed.ACCURATE,
        _V3,
    ),
)

# What faster-whisper loads from a model repository (its download_model's
# allow_patterns); the rest (README, .gitattributes) is not fetched.
WHISPER_FILES: Final = (
    "config.json",
    "preprocessor_config.json",
    "model.bin",
    "tokenizer.json",
    "vocabulary.*",
)

# Resemblyzer 0.1.4's wheel, pinned (PyPI's JSON API gave its URL, size and
# SHA-256). The package itself is not installed: it depends on torch. Only its
# GE2E encoder's weights are kept, a legacy torch pickle read without torch.
VOICE_ENCODER_CATALOGUE: Final = (
    CatalogueEntry(
        kind=ModelKind.VOICE_ENCODER,
        name=VOICE_ENCODER_NAME,
        repo="resemble-ai/Resemblyzer",
        description="Resemblyzer GE2E speaker encoder (voice prints)",
        languages=(),
        size_mb=16,
        speed=Speed.FAST,
        files=(
            RemoteFile(
                path="Resemblyzer-0.1.4-py3-none-any.whl",
                size=15_747_704,
                checksum=Checksum.SHA256,
                digest="8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
                url="https://files.pythonhosted.org/packages/d9/b5"
                "/d897d5de5b2123a1ad5d32e8e007d83f76582f5c32c60992577263bd7c7e"
                "/Resemblyzer-0.1.4-py3-none-any.whl",
            ),
        ),
        member=ArchiveMember(path="resemblyzer/pretrained.pt", size=17_090_379),
        licence="Apache-2.0",
        attribution="Resemblyzer, Copyright 2019 Resemble AI "
        "(https://github.com/resemble-ai/Resemblyzer)",
    ),
)

# <language>_<REGION>-<speaker>-<quality>, e.g. en_US-lessac-medium. Strict (no
# dots or slashes), as the name becomes a file name in the models folder.
_PIPER_VOICE: Final = re.compile(
    r"^(?P<family>[a-z]{2,3})_(?P<region>[A-Z]{2})-(?P<speaker>\w+)"
    r"-(?P<quality>x_low|low|medium|high)$"
)
_PIPER_SPEED: Final = {
    "x_low": Speed.FAST,
    "low": Speed.FAST,
    "medium": Speed.BALANCED,
    "high": Speed.ACCURATE,
}

# A few well-known voices, so the catalogue works before voices.json could be
# fetched: (voice, .onnx size, .onnx MD5, .onnx.json size, .onnx.json MD5),
# copied from voices.json.
_PIPER_FALLBACK: Final = (
    (
        "en_US-lessac-medium",
        63201294,
        "2fc642b535197b6305c7c8f92dc8b24f",
        4885,
        "c1f2b7bddefe113f3255ff9ef234cfd3",
    ),
    (
        "en_US-amy-medium",
        63201294,
        "778d28aeb95fcdf8a882344d9df142fc",
        4882,
        "7f37dadb26340c90ebc8088e0b252310",
    ),
    (
        "en_GB-alan-medium",
        63201294,
        "8f6b35eeb8ef6269021c6cb6d2414c9b",
        4888,
        "b11d9afd0a8f5372c42a52fbd6e021d4",
    ),
    (
        "de_DE-thorsten-medium",
        63201294,
        "a129b00fb3078df43c96bab6c94535c0",
        4819,
        "843a7bd7272724f750534dd5a26d1aad",
    ),
    (
        "fr_FR-siwis-medium",
        63201294,
        "20e876e8c839e9b11a26085858f2300c",
        4875,
        "a407e7e6901feb79c2ea2a5466076cce",
    ),
    (
        "es_ES-davefx-medium",
        63201294,
        "dc515cd4ecc5f6f72fe14a941188fc9c",
        4817,
        "dd157b5eaf6930bf949cf416d9a9307a",
    ),
    (
        "it_IT-paola-medium",
        63511038,
        "3a44e73b12ca5d0c21a72e388b5847c8",
        7099,
        "cd471a3757c88a7a4baee6207248b5d5",
    ),
    (
        "nl_NL-ronnie-medium",
        62950044,
        "f74c8e7779cb05f935367d661de5b380",
        5040,
        "6bd4d32724d8c68926ce7b5012370e61",
    ),
)


def piper_voice_path(name: str) -> str:
    """Locate a voice's files in piper-voices, without their extension."""
    parts = _piper_parts(name)
    folder = f"{parts['family']}/{parts['family']}_{parts['region']}"
    return f"{folder}/{parts['speaker']}/{parts['quality']}/{name}"


def piper_fallback() -> list[CatalogueEntry]:
    """List the built-in voices, for when voices.json is not at hand."""
    entries = []
    for name, model_size, model_md5, config_size, config_md5 in _PIPER_FALLBACK:
        path = piper_voice_path(name)
        config = RemoteFile(
            path=f"{path}.onnx.json",
            size=config_size,
            checksum=Checksum.MD5,
            digest=config_md5,
        )
        model = RemoteFile(
            path=f"{path}.onnx",
            size=model_size,
            checksum=Checksum.MD5,
            digest=model_md5,
        )
        entries.append(_piper_entry(name, config, model))
    return entries


def piper_catalogue(voices: object) -> list[CatalogueEntry]:
    """List the voices in piper-voices' ``voices.json``.

    Raises TypeError or ValueError if it is not such an index; voices whose
    name or files do not follow the repository's layout are left out.
    """
    if not isinstance(voices, Mapping):
        msg = f"{PIPER_INDEX} is not a mapping of voices"
        raise TypeError(msg)
    entries = []
    for name, voice in voices.items():
        if _PIPER_VOICE.match(name) is None or not isinstance(voice, Mapping):
            continue
        files = voice.get("files")
        if not isinstance(files, Mapping):
            continue
        path = piper_voice_path(name)
        try:
            config = _voice_file(f"{path}.onnx.json", files)
            model = _voice_file(f"{path}.onnx", files)
        except KeyError, TypeError, ValueError:
            continue
        entries.append(_piper_entry(name, config, model))
    if not entries:
        msg = f"{PIPER_INDEX} lists no voice"
        raise ValueError(msg)
    return entries


def _piper_parts(name: str) -> dict[str, str]:
    if (match := _PIPER_VOICE.match(name)) is None:
        msg = f"{name!r} is not a piper voice name like en_US-lessac-medium"
        raise ValueError(msg)
    return match.groupdict()


def _voice_file(path: str, files: Mapping[str, Any]) -> RemoteFile:
    facts = files[path]
    return RemoteFile(
        path=path,
        size=int(facts["size_bytes"]),
        checksum=Checksum.MD5,
        digest=str(facts["md5_digest"]),
    )


def _piper_entry(name: str, config: RemoteFile, model: RemoteFile) -> CatalogueEntry:
    parts = _piper_parts(name)
    language = f"{parts['family']}_{parts['region']}"
    return CatalogueEntry(
        kind=ModelKind.PIPER,
        name=name,
        repo=PIPER_REPO,
        description=f"{parts['speaker']} ({language}, {parts['quality']} quality)",
        languages=(language,),
        size_mb=math.ceil((config.size + model.size) / 1_000_000),
        speed=_PIPER_SPEED[parts["quality"]],
        files=(config, model),
    )
