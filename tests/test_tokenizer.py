"""The tokenizer's bytes table: text from ids equal to `tokenizers`' own decode, made once
beside tokenizer.json, read without building the tokenizer, remade when tokenizer.json
changes, never made for a tokenizer whose decoder is not byte-level."""

import json
import random
import shutil

import pytest

from whisper_ort.core.tokenizer import BYTES_TABLE, WhisperTokenizer


@pytest.fixture()
def folder(tmp_path, model_dir):
    for name in ("tokenizer.json", "generation_config.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    return tmp_path


def _tokenizer(folder, **kw) -> WhisperTokenizer:
    gen = json.loads((folder / "generation_config.json").read_text())
    return WhisperTokenizer(folder / "tokenizer.json", gen, 51865, **kw)


def _sequences(tok, n=3000, seed=0):
    """Random id sequences: any id (specials and timestamps too, which decoding drops), and
    ids whose bytes are not ASCII, whose pieces split UTF-8 characters between tokens."""
    rng = random.Random(seed)
    table = tok._table
    non_ascii = [i for i in range(tok.ids.eot) if any(b > 127 for b in table.data[table.offsets[i] : table.offsets[i + 1]])]
    assert len(non_ascii) > 1000
    for k in range(n):
        pool = non_ascii if k % 2 else range(tok.vocab_size)
        yield [rng.choice(pool) for _ in range(rng.randrange(0, 24))]


def test_bytes_table_decodes_as_tokenizers(folder):
    made = _tokenizer(folder)
    assert made._table is not None and (folder / BYTES_TABLE).is_file()
    read = _tokenizer(folder)
    assert read._table is not None and read._tokenizer is None  # the text path never built the tokenizer
    reference = made.tokenizer
    eot = made.ids.eot
    singles = reference.decode_batch([[i] for i in range(eot)], skip_special_tokens=True)
    assert [read.decode([i]) for i in range(eot)] == singles
    for ids in _sequences(read):
        assert read.decode(ids) == reference.decode([i for i in ids if i < eot], skip_special_tokens=True), ids
    plain = _tokenizer(folder, bytes_table=False)
    assert plain._table is None
    ts = plain.ids.timestamp_begin
    for ids in _sequences(read, n=300, seed=1):
        marked = [ts, *ids[:5], ts + 36, *ids[5:], ts + 90]
        assert read.decode_with_timestamps(marked) == plain.decode_with_timestamps(marked)
    # Text to ids still works: the tokenizer is built when first asked for.
    assert read.decode(read.encode(" Hello wörld, 日本語")) == " Hello wörld, 日本語" and read._tokenizer is not None


def test_stale_table_is_remade(folder):
    _tokenizer(folder)
    before = (folder / BYTES_TABLE).read_bytes()
    data = json.loads((folder / "tokenizer.json").read_text())
    (folder / "tokenizer.json").write_text(json.dumps(data, indent=1))  # same tokenizer, other bytes
    tok = _tokenizer(folder)
    assert tok._tokenizer is not None  # the old table was not trusted: the tokenizer was built again
    assert (folder / BYTES_TABLE).read_bytes() != before
    assert _tokenizer(folder)._tokenizer is None
    table = folder / BYTES_TABLE
    table.write_bytes(table.read_bytes()[:-100])  # cut short: not trusted, made again
    assert _tokenizer(folder)._tokenizer is not None and _tokenizer(folder)._tokenizer is None


def test_no_table_for_another_decoder_or_outside_the_folder(folder):
    data = json.loads((folder / "tokenizer.json").read_text())
    data["decoder"] = None  # tokenizers then joins the token strings with spaces
    (folder / "tokenizer.json").write_text(json.dumps(data))
    tok = _tokenizer(folder)
    assert tok._table is None and not (folder / BYTES_TABLE).exists()
    ids = tok.encode(" Hello world")
    assert tok.decode(ids) == tok.tokenizer.decode(ids)

    data["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    (folder / "tokenizer.json").write_text(json.dumps(data))
    outside = _tokenizer(folder, bytes_table=False)  # --tokenizer-json: the user's folder gets no file
    assert outside._table is None and not (folder / BYTES_TABLE).exists()
