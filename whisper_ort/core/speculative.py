"""Exact speculative greedy decoding: a cheap draft guesses, one FP32 forward checks.

A token step reads every weight of the decoder to produce one token, so its time is set by
memory bandwidth, not arithmetic; a forward over k + 1 positions reads them once too. So:

1. the draft (build/draft_graph.py: the same decoder with 4-bit weights) guesses k tokens
   one by one after the last accepted token, starting from the verifier's own K/V;
2. the FP32 decoder runs once over [last, g1 .. gk] (MhaSessions.verify), its head scoring
   every position: v0 .. vk, exactly the argmax greedy takes at each (BoundedLogits);
3. the guesses are kept while g(j+1) == vj, then vj itself: greedy's tokens, 1 to k + 1 of
   them a forward; the K/V of rejected positions are cut off (their tokens were wrong).

Every token is the verifier's argmax given the tokens before it, so the output is greedy's
whatever the draft guesses; the draft only decides how many tokens each forward yields.
End of text, max_new_tokens and the repetition cut are applied token by token, as the
plain loop (core/decoding.py) does. One row at a time (batch 1): rows accept different
counts, so batched windows keep the plain loop. With timestamps, the token at each checked
position is the timestamp rules' choice under that position's own mask (the rules depend
on the tokens before it), and the draft guesses under the rules' static mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whisper_ort.core.decoding import repeated_tail


@dataclass
class Speculation:
    """What one speculative decode did: forwards of the FP32 decoder, draft steps, guesses
    checked and kept (tokens = accepted + forwards, counting the one each forward gives)."""

    forwards: int = 0
    draft_steps: int = 0
    drafted: int = 0
    accepted: int = 0


# The draft reads the cross K/V of the frames with audio and this many more (2 s): past the
# audio the window is padding, which the model attends to little (dev files, 8-bit draft:
# 217 of 222 guesses kept against 217 of 219 over all 1500 frames; no margin: 208 of 255).
DRAFT_MARGIN_FRAMES = 100
SAMPLES_PER_FRAME = 320  # the encoder's 20 ms frames at 16 kHz


def draft_cross(sessions, cross_kv: list[np.ndarray], n_samples: list[int] | None) -> list[np.ndarray]:
    """The window's cross K/V cut to the frames of its audio (one row), contiguous: the
    draft reads them every guess. Unknown length: all frames."""
    frames = cross_kv[0].shape[2]
    if n_samples:
        frames = min(frames, -(-int(n_samples[0]) // SAMPLES_PER_FRAME) + DRAFT_MARGIN_FRAMES)
    return cross_kv if frames == cross_kv[0].shape[2] else sessions.cut_cross(cross_kv, frames)


def _cut(kv: list[np.ndarray], length: int) -> list[np.ndarray]:
    """The K/V of the first `length` positions (a view when nothing is cut)."""
    return kv if kv[0].shape[2] == length else [a[:, :, :length] for a in kv]


def speculative_greedy(sessions, first_token: int, self_kv: list, cross_kv: list, draft_cross: list, mask: np.ndarray,
                       eot: int, max_new_tokens: int, max_repeats: int, k: int, timestamps=None) -> tuple[list[int], list[str], Speculation]:
    """Greedy's tokens for one row after its prompt step: (tokens, flags, Speculation).
    first_token: the prompt step's greedy token; self_kv: the prompt's K/V; cross_kv: the
    window's, draft_cross: the same, maybe cut to the frames with audio, for the draft;
    mask: the filters' 0 / -inf after the first token. timestamps: None, or the timestamp
    rules' (draft_mask(tokens), check(token lists) -> (verify mask, choice(logits)))
    (GreedyDecoder._timestamp_verifier): their masks change with the tokens, so each
    checked position gets its own, and its token is the rules' choice, not the argmax."""
    tokens: list[int] = []
    flags: list[str] = []
    stats = Speculation()

    def take(token: int) -> bool:
        """Append greedy's next token; False once decoding ends (the plain loop's rules)."""
        if token == eot:
            return False
        tokens.append(token)
        if len(tokens) >= max_new_tokens:
            flags.append("max_new_tokens")
            return False
        if max_repeats and (cut := repeated_tail(tokens, max_repeats)):
            del tokens[-cut:]
            flags.append("repetition_cut")
            return False
        return True

    if not take(first_token):
        return tokens, flags, stats
    last = first_token
    while True:
        room = min(k, max_new_tokens - len(tokens))  # guesses past max_new_tokens would never be kept
        guesses: list[int] = []
        draft_kv, token = self_kv, last
        while len(guesses) < room:
            draft_mask = mask if timestamps is None else timestamps[0](tokens + guesses)
            token, draft_kv = sessions.draft_step(token, draft_kv, draft_cross, draft_mask)
            guesses.append(token)
            stats.draft_steps += 1
            if token == eot:
                break
        ids = np.array([[last, *guesses]], dtype=np.int64)
        if timestamps is None:
            logits, present = sessions.verify(ids, self_kv, cross_kv, mask)
            verified = logits.argmax()
        else:  # position j follows tokens + guesses[:j]
            verify_mask, choice = timestamps[1]([tokens + guesses[:j] for j in range(len(guesses) + 1)])
            logits, present = sessions.verify(ids, self_kv, cross_kv, verify_mask)
            verified = choice(logits)
        stats.forwards += 1
        stats.drafted += len(guesses)
        kept = 0
        while kept < len(guesses) and guesses[kept] == verified[kept]:
            kept += 1
        stats.accepted += kept
        # Positions last, g1 .. g_kept were fed the right tokens: their K/V stay.
        self_kv = _cut(present, self_kv[0].shape[2] + 1 + kept)
        for token in verified[: kept + 1].tolist():
            if not take(token):
                return tokens, flags, stats
        last = tokens[-1]
