"""Would exact speculative decoding pay here? Drafts scored against greedy's own tokens.

Speculative decoding is exact when a forward over [last token, d1..dk] keeps the longest
draft prefix greedy would have produced, plus greedy's next token: each forward yields
1 + accepted tokens. So the acceptance of a draft method is decided by the greedy token
sequence alone, with no verify graph: at each point of greedy's output, draft k tokens
from what is known there, count how many match what greedy produced next, jump past
them and the one the forward gives. That is what this module does, for the drafts the
issue names that need no second model:

    prompt_lookup   the last n tokens (n = 3, 2, 1) looked up in what came before: the
                    window's own tokens, and with `--context previous` also the text of
                    the windows (files) before it, as condition_on_previous_text feeds
    token_map       each token's most frequent successor, from the other files' greedy
                    tokens (leave-one-out: a file's own tokens never draft it)

and the cost side: the decoder forward over k + 1 new positions against one (the mha
graph with past K/V, the same weights read once), medians of interleaved runs. Then the
draft that was built (self_draft): the speculative decoder itself with the folder's 4-bit
draft, its acceptance and its token loop against plain greedy's, interleaved.

    python -m whisper_ort.measure.speculation --audio-dir samples --files '[jl]*' --k 4
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np


def prompt_lookup(context: list[int], k: int, max_ngram: int = 3) -> list[int]:
    """The k tokens that followed the latest earlier occurrence of context's last n tokens."""
    for n in range(min(max_ngram, len(context) - 1), 0, -1):
        tail = context[-n:]
        for start in range(len(context) - n - 1, -1, -1):
            if context[start : start + n] == tail:
                return context[start + n : start + n + k]
    return []


def successor_table(sequences: list[list[int]]) -> dict[int, int]:
    """Each token's most frequent next token over the sequences."""
    counts: dict[int, Counter] = defaultdict(Counter)
    for seq in sequences:
        for a, b in zip(seq, seq[1:]):
            counts[a][b] += 1
    return {a: c.most_common(1)[0][0] for a, c in counts.items()}


def token_map_draft(table: dict[int, int], context: list[int], k: int) -> list[int]:
    out, last = [], context[-1] if context else None
    while len(out) < k and last in table:
        last = table[last]
        out.append(last)
    return out


def simulate(target: list[int], prefix: list[int], draft, k: int) -> dict:
    """Forwards a speculative decoder needs for `target` (greedy's tokens, end of text
    included) when each forward verifies draft(known, k): {tokens, forwards, drafted, accepted}."""
    i = forwards = drafted = accepted = 0
    while i < len(target):
        guess = draft(prefix + target[:i], k)[:k]
        m = 0
        while m < len(guess) and i + m < len(target) and guess[m] == target[i + m]:
            m += 1
        drafted += len(guess)
        accepted += m
        forwards += 1
        i += m + 1  # the accepted drafts and the token the forward itself gives
    return {"tokens": len(target), "forwards": forwards, "drafted": drafted, "accepted": accepted}


def _summarize(rows: list[dict]) -> dict:
    tokens, forwards = sum(r["tokens"] for r in rows), sum(r["forwards"] for r in rows)
    drafted, accepted = sum(r["drafted"] for r in rows), sum(r["accepted"] for r in rows)
    return {"tokens": tokens, "forwards": forwards, "tokens_per_forward": tokens / forwards if forwards else None,
            "drafted": drafted, "accepted": accepted, "acceptance": accepted / drafted if drafted else None}


def greedy_sequences(transcriber, paths: list[Path]) -> dict[str, dict]:
    """Per file: the prompt and greedy's generated tokens (end of text appended)."""
    from whisper_ort.core.decoding import DecodingOptions

    options = DecodingOptions(language="en")
    eot = transcriber.tokenizer.ids.eot
    prompt = transcriber.tokenizer.prompt(transcriber.tokenizer.language_id("en"), "transcribe", False)
    return {p.name: {"prompt": list(prompt), "tokens": list(transcriber.transcribe(p, options).tokens) + [eot]} for p in paths}


def acceptance(seqs: dict[str, dict], k: int, context: str = "window") -> dict:
    """Each draft method's tokens per forward over the files (in name order)."""
    names = sorted(seqs)
    out = {}
    for method in ("prompt_lookup", "token_map"):
        rows = []
        for j, name in enumerate(names):
            prefix = list(seqs[name]["prompt"])
            if context == "previous":  # the text before, as condition_on_previous_text gives it
                prefix = [t for prev in names[:j] for t in seqs[prev]["tokens"][:-1]] + prefix
            if method == "prompt_lookup":
                draft = prompt_lookup
            else:
                table = successor_table([seqs[n]["tokens"] for n in names if n != name])
                draft = lambda known, kk, table=table: token_map_draft(table, known, kk)  # noqa: E731
            rows.append({"file": name, **simulate(seqs[name]["tokens"], prefix, draft, k)})
        out[method] = {**_summarize(rows), "files": rows}
    return out


def self_draft(transcriber, paths: list[Path], ks=(4,), rounds: int = 3) -> dict:
    """The speculative decoder itself (core/speculative.py, the folder's quantized draft) on
    real windows: per k, guesses drafted and kept, FP32 forwards, and the token loop's
    seconds (after the prompt step) against plain greedy's, rounds interleaved over k (k = 0:
    plain). Medians over rounds of the sum over files; tokens checked equal to plain's."""
    from whisper_ort.core.audio import load_audio
    from whisper_ort.core.decoding import DecodingOptions
    from whisper_ort.core.features import log_mel_batch
    from whisper_ort.core.speculative import draft_cross, speculative_greedy

    sessions, tok = transcriber.sessions, transcriber.tokenizer
    decoder = transcriber.decoder(DecodingOptions(language="en", draft_tokens=0))
    first_mask, later_mask = decoder.masks
    prompt = np.array([tok.prompt(tok.language_id("en"), "transcribe", False)], dtype=np.int64)
    windows = []
    for path in paths:
        samples = load_audio(path)
        windows.append((len(samples), sessions.encode(log_mel_batch([samples]))))
    ks = (0, *[k for k in ks if k])
    seconds = {k: [] for k in ks}
    counts = {k: {"tokens": 0, "forwards": 0, "drafted": 0, "accepted": 0} for k in ks}
    plain_tokens: list[list[int]] = []
    for r in range(rounds):
        for k in ks:
            total = 0.0
            for i, (n_samples, states) in enumerate(windows):
                logits, self_kv, cross = sessions.first_step(prompt, states, first_mask)
                first = int(logits.argmax()[0])
                start = time.perf_counter()
                if k:
                    tokens, _, spec = speculative_greedy(sessions, first, self_kv, cross, draft_cross(sessions, cross, [n_samples]), later_mask,
                                                         tok.ids.eot, 440, 12, k)
                else:
                    tokens, t = [], first
                    while t != tok.ids.eot and len(tokens) < 440:
                        tokens.append(t)
                        logits, self_kv = sessions.step(np.array([[t]], dtype=np.int64), self_kv, cross, later_mask)
                        t = int(logits.argmax()[0])
                total += time.perf_counter() - start
                if r == 0 and k == 0:
                    plain_tokens.append(tokens)
                elif r == 0:
                    if tokens != plain_tokens[i]:
                        raise AssertionError(f"{paths[i].name}: k={k} tokens differ from plain greedy's")
                    c = counts[k]
                    c["tokens"] += len(tokens) + 1
                    c["forwards"] += spec.forwards
                    c["drafted"] += spec.drafted
                    c["accepted"] += spec.accepted
            seconds[k].append(total)
    tokens = sum(len(t) + 1 for t in plain_tokens)
    base = float(np.median(seconds[0]))
    out = {}
    for k in ks:
        loop = float(np.median(seconds[k]))
        c = counts[k]
        out[str(k)] = {"loop_s": loop, "ms_per_token": 1000 * loop / tokens, "ratio_to_plain": loop / base,
                       **({"tokens_per_forward": (c["forwards"] + c["accepted"]) / c["forwards"],
                           "acceptance": c["accepted"] / c["drafted"], **c} if k else {})}
    return out


def verify_cost(transcriber, path: Path, ks=(0, 1, 2, 4, 8), rounds: int = 20) -> dict:
    """Median seconds of one decoder forward over 1 + k new positions with a past of the
    file's own tokens (mha or export variant, no logit filters), interleaved over k."""
    sessions = transcriber.sessions
    _, seq, self_kv, cross_kv = past_at_half(transcriber, path)
    times: dict[int, list[float]] = {k: [] for k in ks}
    new = np.array([seq["tokens"][len(seq["tokens"]) // 2 :][:9]], dtype=np.int64)
    for _ in range(rounds):
        for k in ks:
            ids = new[:, : k + 1]
            start = time.perf_counter()
            _step_many(sessions, ids, self_kv, cross_kv)
            times[k].append(time.perf_counter() - start)
    base = float(np.median(times[ks[0]]))
    return {str(k): {"median_s": float(np.median(t)), "ratio_to_one": float(np.median(t)) / base} for k, t in times.items()}


def past_at_half(transcriber, path: Path):
    """The file's mel, its greedy sequence, and the decoder's self and cross K/V after the
    prompt and the first half of its tokens: a typical point inside a window."""
    from whisper_ort.core.audio import load_audio
    from whisper_ort.core.features import log_mel_batch

    sessions = transcriber.sessions
    seq = greedy_sequences(transcriber, [path])[path.name]
    mel = log_mel_batch([load_audio(path)])
    past_ids = np.array([seq["prompt"] + seq["tokens"][: len(seq["tokens"]) // 2]], dtype=np.int64)
    _, self_kv, cross_kv = sessions.first_step(past_ids, sessions.encode(mel))
    return mel, seq, self_kv, cross_kv


def mha_step_feeds(sessions, ids: np.ndarray, self_kv: list, cross_kv: list) -> dict:
    """The mha decoder graph's inputs for new positions `ids` after the cached K/V, the head
    scoring the last."""
    return {**sessions._feeds(ids, self_kv, cross_kv), "head_positions": np.array([-1], dtype=np.int64)}


def _step_many(sessions, ids: np.ndarray, self_kv: list, cross_kv: list):
    """The decoder over several new positions after a past (the graphs take T > 1 with
    past), the mha decoder's head scoring each of them, as speculative decoding's check does."""
    from whisper_ort.core.decoders import MhaSessions

    if isinstance(sessions, MhaSessions):
        return sessions.verify(ids, self_kv, cross_kv)
    return sessions.step(ids, self_kv, cross_kv)


def main(argv=None) -> int:
    from whisper_ort.core.pipeline import Transcriber
    from whisper_ort.measure.environment import cpu_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--files", default="[jl]*")
    p.add_argument("--onnx-dir", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--k", type=int, default=4, help="draft tokens per forward")
    p.add_argument("--rounds", type=int, default=20, help="interleaved rounds of the verify-cost timing (0: skip it)")
    p.add_argument("--self-draft", default="4", help="comma list of k for the quantized self-draft run (core/speculative.py); empty: skip")
    p.add_argument("--self-draft-rounds", type=int, default=3, help="interleaved rounds of the self-draft timing")
    p.add_argument("--output", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    paths = sorted(Path(args.audio_dir).glob(args.files))
    transcriber = Transcriber(args.onnx_dir, threads=args.threads)
    seqs = greedy_sequences(transcriber, paths)
    result = {"cpu": cpu_model(), "threads": args.threads, "variant": transcriber.variant, "k": args.k, "files": [p.name for p in paths],
              "window": acceptance(seqs, args.k, "window"), "previous": acceptance(seqs, args.k, "previous")}
    if args.rounds:
        result["verify_cost"] = verify_cost(transcriber, paths[0], rounds=args.rounds)
    if args.self_draft:
        result["self_draft"] = self_draft(transcriber, paths, [int(k) for k in args.self_draft.split(",")], args.self_draft_rounds)
    for context in ("window", "previous"):
        for method, r in result[context].items():
            print(f"{context:8s} {method:13s} tokens/forward {r['tokens_per_forward']:.3f}  acceptance {r['accepted']}/{r['drafted']}"
                  f" over {r['tokens']} tokens")
    for k, r in result.get("verify_cost", {}).items():
        print(f"forward over 1+{k} positions: {1000 * r['median_s']:.2f} ms, {r['ratio_to_one']:.2f}x one")
    for k, r in result.get("self_draft", {}).items():
        spec = f"  tokens/forward {r['tokens_per_forward']:.2f}  acceptance {r['accepted']}/{r['drafted']}" if k != "0" else "  (plain greedy)"
        print(f"self-draft k={k}: token loop {r['ms_per_token']:.2f} ms/token, {r['ratio_to_plain']:.3f}x plain{spec}")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
