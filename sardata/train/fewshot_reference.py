"""Trivial few-shot baselines on the very tensors the models see (issue 17: a few-shot table must carry them).

Why: a fine-tuned ViT that does not beat a pixel lookup on the same shots has learned nothing useful, and the
earlier MSTAR check found exactly that (1-NN 48 % vs the models' 14–19 %). Both rules read the preprocessed
``(N, 1, S, S)`` views of :func:`sardata.train.finetune.load_view` (same crop, resize and [0, 1] scaling as
the models), flattened, so a difference between a rule and a model is the model's, not the input's.

* :func:`pixel_1nn`: the label of the training image nearest in Euclidean distance (ties: the lower index,
  i.e. the first in the view's order).
* :func:`nearest_centroid`: the class whose mean training image is nearest (classes without training images
  are never predicted).
"""

from __future__ import annotations

import torch

#: protocol names of the reference rows in results.jsonl / summary.md
REFERENCE_PROTOCOLS = ("pixel 1-NN", "nearest centroid")


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(len(x), -1).double()


def pixel_1nn(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Predicted labels of ``xte`` by its nearest training image."""
    a = _flat(xtr)
    out = []
    for lo in range(0, len(xte), batch):
        d = torch.cdist(_flat(xte[lo : lo + batch]), a)
        out.append(ytr[d.argmin(1)])
    return torch.cat(out)


def nearest_centroid(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor) -> torch.Tensor:
    """Predicted labels of ``xte`` by the nearest class-mean training image."""
    classes = torch.unique(ytr)
    a = _flat(xtr)
    centroids = torch.stack([a[ytr == c].mean(0) for c in classes])
    return classes[torch.cdist(_flat(xte), centroids).argmin(1)]


def predict(protocol: str, xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor) -> torch.Tensor:
    """The reference rule named ``protocol`` (one of :data:`REFERENCE_PROTOCOLS`)."""
    if protocol == REFERENCE_PROTOCOLS[0]:
        return pixel_1nn(xtr, ytr, xte)
    if protocol == REFERENCE_PROTOCOLS[1]:
        return nearest_centroid(xtr, ytr, xte)
    raise ValueError(f"not a reference protocol: {protocol!r}")


__all__ = ["REFERENCE_PROTOCOLS", "nearest_centroid", "pixel_1nn", "predict"]
