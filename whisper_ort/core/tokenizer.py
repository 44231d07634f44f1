"""Whisper's tokenizer: `tokenizers.Tokenizer` plus the special ids the decoder needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

TIME_PRECISION = 0.02  # seconds per timestamp token


class TokenizerError(ValueError):
    """tokenizer.json is unreadable or does not fit the model."""


@dataclass(frozen=True)
class SpecialIds:
    sot: int
    eot: int
    no_timestamps: int
    timestamp_begin: int
    transcribe: int
    translate: int
    no_speech: int
    lang_to_id: dict  # "<|en|>" -> 50259


class WhisperTokenizer:
    def __init__(self, tokenizer_json: str | Path, generation_config: dict, vocab_size: int):
        path = Path(tokenizer_json)
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise TokenizerError(f"{path}: cannot be read as a tokenizer ({str(exc).splitlines()[0]})") from None
        cfg = generation_config
        no_ts = cfg["no_timestamps_token_id"]
        lang_to_id = dict(cfg["lang_to_id"])
        self.ids = SpecialIds(
            sot=cfg["decoder_start_token_id"],
            eot=cfg["eos_token_id"] if isinstance(cfg["eos_token_id"], int) else cfg["eos_token_id"][0],
            no_timestamps=no_ts,
            timestamp_begin=no_ts + 1,
            transcribe=cfg["task_to_id"]["transcribe"],
            translate=cfg["task_to_id"]["translate"],
            no_speech=no_ts - 1,
            lang_to_id=lang_to_id,
        )
        self.vocab_size = vocab_size
        self.id_to_lang = {v: k[2:-2] for k, v in lang_to_id.items()}
        # The tokenizer must name every special id the way the model expects, and its
        # text vocabulary must fit inside the model's output rows.
        text_vocab = self.tokenizer.get_vocab_size(with_added_tokens=True)
        if text_vocab > vocab_size:
            raise TokenizerError(f"{path}: {text_vocab} tokens do not fit the model's {vocab_size} output rows")
        expected = {"<|startoftranscript|>": self.ids.sot, "<|endoftext|>": self.ids.eot, "<|notimestamps|>": no_ts}
        expected.update(lang_to_id)
        for token, token_id in expected.items():
            if self.tokenizer.token_to_id(token) != token_id:
                raise TokenizerError(f"{path}: {token} has id {self.tokenizer.token_to_id(token)}, the model expects {token_id}")

    @classmethod
    def from_folder(cls, folder: str | Path, vocab_size: int) -> WhisperTokenizer:
        folder = Path(folder)
        return cls(folder / "tokenizer.json", json.loads((folder / "generation_config.json").read_text()), vocab_size)

    def language_id(self, language: str) -> int:
        key = f"<|{language}|>"
        if key not in self.ids.lang_to_id:
            raise ValueError(f"unknown language {language!r}; known: {', '.join(sorted(self.id_to_lang.values()))}")
        return self.ids.lang_to_id[key]

    def task_id(self, task: str) -> int:
        if task not in ("transcribe", "translate"):
            raise ValueError(f"unknown task {task!r}; use transcribe or translate")
        return self.ids.transcribe if task == "transcribe" else self.ids.translate

    def prompt(self, language_id: int | None, task: str, timestamps: bool) -> list[int]:
        """<|startoftranscript|><|lang|><|task|> (+ <|notimestamps|> unless timestamps)."""
        ids = [self.ids.sot]
        if language_id is not None:
            ids.append(language_id)
        ids.append(self.task_id(task))
        if not timestamps:
            ids.append(self.ids.no_timestamps)
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of plain text (an initial prompt), no special tokens."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, tokens) -> str:
        """Text of the tokens without special or timestamp tokens."""
        return self.tokenizer.decode([t for t in tokens if t < self.ids.eot], skip_special_tokens=True)

    def decode_with_timestamps(self, tokens) -> str:
        """Text with timestamps written as <|1.08|>, as openai/whisper does."""
        parts, run = [], []
        for t in tokens:
            if t >= self.ids.timestamp_begin:
                parts.append(self.tokenizer.decode(run))
                parts.append(f"<|{(t - self.ids.timestamp_begin) * TIME_PRECISION:.2f}|>")
                run = []
            elif t < self.ids.eot:
                run.append(t)
        parts.append(self.tokenizer.decode(run))
        return "".join(parts)
