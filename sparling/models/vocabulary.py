"""Output token vocabulary: ``<s>``, ``</s>``, then the domain's symbols (spec §4.5)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

BOS, EOS = "<s>", "</s>"


class Vocabulary:
    """Token ids: 0 = ``<s>``, 1 = ``</s>``, 2.. = the symbols in the given order."""

    def __init__(self, symbols: Sequence[str]):
        if len(set(symbols)) != len(symbols) or {BOS, EOS} & set(symbols):
            raise ValueError(f"symbols must be distinct and exclude {BOS}/{EOS}, got {list(symbols)}")
        self.tokens: tuple[str, ...] = (BOS, EOS, *symbols)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.bos, self.eos = 0, 1

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, ys: Sequence[Sequence[str]], length: int) -> torch.Tensor:
        """Sequences → (N, length) ids ``<s> y </s> </s> ...`` (padded with ``</s>``)."""
        out = torch.full((len(ys), length), self.eos, dtype=torch.long)
        for row, y in enumerate(ys):
            if len(y) + 2 > length:
                raise ValueError(f"sequence of {len(y)} symbols does not fit length {length}")
            out[row, 0] = self.bos
            out[row, 1 : 1 + len(y)] = torch.tensor([self.ids[s] for s in y], dtype=torch.long)
        return out

    def decode(self, ids: Sequence[int]) -> tuple[str, ...]:
        """Ids after ``<s>`` → symbols up to the first ``</s>``."""
        out = []
        for i in ids:
            if i == self.eos:
                break
            if i != self.bos:
                out.append(self.tokens[i])
        return tuple(out)
