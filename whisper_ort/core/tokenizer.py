"""Whisper's tokenizer: the special ids the decoder needs, text from token ids, and
`tokenizers.Tokenizer` for text to ids (an initial prompt), loaded when first asked for.

Text from ids needs only each token's bytes (byte-level BPE). Building a
`tokenizers.Tokenizer` from tokenizer.json costs 0.15-0.18 s and 19 MB of RSS on every start
(AMD EPYC Zen 3), the largest fixed cost of a CLI call after the sessions; so every token's
bytes are kept beside it in tokenizer_bytes.bin (keyed by tokenizer.json's sha256, written
when the tokenizer is first built from it, skipped where the folder is read-only) and read in
a few ms. The table is checked against the tokenizer's own decode of every token before it
is written, so a tokenizer with another decoder never gets one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIME_PRECISION = 0.02  # seconds per timestamp token
BYTES_TABLE = "tokenizer_bytes.bin"  # beside tokenizer.json: every token's bytes (see the module's docstring)


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


def _byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the character a token string uses for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), ord("\u00ff") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


@dataclass(frozen=True)
class BytesTable:
    """Every token's bytes (empty for special tokens, which decoding skips), the added
    tokens' ids by content, and the tokenizer's size with them."""

    sha256: str
    data: bytes
    offsets: list[int]
    added: dict[str, int]
    vocab_with_added: int

    def decode(self, ids) -> str:
        data, offsets = self.data, self.offsets
        return b"".join(data[offsets[i] : offsets[i + 1]] for i in ids).decode("utf-8", "replace")

    @classmethod
    def build(cls, tokenizer, sha256: str) -> BytesTable | None:
        """The table of a loaded `tokenizers.Tokenizer`; None unless it decodes every token
        as the tokenizer does (a decoder other than byte-level)."""
        byte_of = _byte_of_char()
        added = {token.content: i for i, token in tokenizer.get_added_tokens_decoder().items()}
        special = {i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        pieces = []
        for i in range(size):
            token = tokenizer.id_to_token(i)
            if token is None or i in special:
                pieces.append(b"")
                continue
            pieces.append(b"".join(bytes([byte_of[c]]) if c in byte_of else c.encode("utf-8") for c in token))
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).tolist()
        table = cls(sha256, b"".join(pieces), offsets, added, size)
        singles = tokenizer.decode_batch([[i] for i in range(size)], skip_special_tokens=True)
        if any(table.decode([i]) != text for i, text in enumerate(singles)):
            return None
        return table

    def save(self, path: Path) -> None:
        """One JSON line (sha256, the added tokens, the sizes), then the offsets as int64, then
        the bytes; written atomically, skipped where the folder cannot be written."""
        header = {"sha256": self.sha256, "added": self.added, "vocab_with_added": self.vocab_with_added, "tokens": len(self.offsets) - 1}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # the folder's own file mode (mkstemp's is 0600)
        try:
            with open(tmp, "wb") as f:
                f.write(json.dumps(header).encode() + b"\n")
                f.write(np.asarray(self.offsets, dtype="<i8").tobytes())
                f.write(self.data)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, sha256: str) -> BytesTable | None:
        """The table at `path` if it was made from this tokenizer.json; None otherwise (absent,
        stale, short or unreadable: the caller builds it again)."""
        try:
            with open(path, "rb") as f:
                header = json.loads(f.readline())
                if header.get("sha256") != sha256:
                    return None
                n = int(header["tokens"])
                offsets = np.frombuffer(f.read(8 * (n + 1)), dtype="<i8").tolist()
                data = f.read()
            if len(offsets) != n + 1 or offsets[-1] != len(data):
                return None
            return cls(sha256, data, offsets, dict(header["added"]), int(header["vocab_with_added"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


class WhisperTokenizer:
    def __init__(self, tokenizer_json: str | Path, generation_config: dict, vocab_size: int, bytes_table: bool = True):
        """bytes_table: read (or make, where the folder can be written) tokenizer_bytes.bin
        beside tokenizer.json; False for a tokenizer.json outside the model folder, whose
        folder is the user's."""
        self.path = path = Path(tokenizer_json)
        self._tokenizer = None  # tokenizers.Tokenizer, built on first use (`tokenizer`)
        self._table = self._bytes_table() if bytes_table else None
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
        text_vocab = self._table.vocab_with_added if self._table else self.tokenizer.get_vocab_size(with_added_tokens=True)
        if text_vocab > vocab_size:
            raise TokenizerError(f"{path}: {text_vocab} tokens do not fit the model's {vocab_size} output rows")
        expected = {"<|startoftranscript|>": self.ids.sot, "<|endoftext|>": self.ids.eot, "<|notimestamps|>": no_ts}
        expected.update(lang_to_id)
        for token, token_id in expected.items():
            found = self._table.added.get(token) if self._table else None
            if found is None:  # not an added token: the tokenizer's vocabulary says
                found = self.tokenizer.token_to_id(token)
            if found != token_id:
                raise TokenizerError(f"{path}: {token} has id {found}, the model expects {token_id}")

    def _bytes_table(self) -> BytesTable | None:
        """The table beside tokenizer.json, made and saved when absent or stale; None where
        it cannot be saved (making it costs more than the tokenizer it spares)."""
        try:
            sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError as exc:
            raise TokenizerError(f"{self.path}: cannot be read as a tokenizer ({exc.strerror or exc})") from None
        table_path = self.path.with_name(BYTES_TABLE)
        table = BytesTable.load(table_path, sha256)
        if table is None and os.access(self.path.parent, os.W_OK):
            table = BytesTable.build(self.tokenizer, sha256)
            if table is not None:
                table.save(table_path)
        return table

    @property
    def tokenizer(self):
        """The `tokenizers.Tokenizer` of tokenizer.json, built on first use (encode, and
        decoding where no bytes table could be made)."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            try:
                self._tokenizer = Tokenizer.from_file(str(self.path))
            except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
                raise TokenizerError(f"{self.path}: cannot be read as a tokenizer ({str(exc).splitlines()[0]})") from None
        return self._tokenizer

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
        text_ids = [t for t in tokens if t < self.ids.eot]
        if self._table is not None:
            return self._table.decode(text_ids)
        return self.tokenizer.decode(text_ids, skip_special_tokens=True)

    def decode_with_timestamps(self, tokens) -> str:
        """Text with timestamps written as <|1.08|>, as openai/whisper does."""
        parts, run = [], []
        for t in tokens:
            if t >= self.ids.timestamp_begin:
                parts.append(self.decode(run))
                parts.append(f"<|{(t - self.ids.timestamp_begin) * TIME_PRECISION:.2f}|>")
                run = []
            elif t < self.ids.eot:
                run.append(t)
        parts.append(self.decode(run))
        return "".join(parts)
