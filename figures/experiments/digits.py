"""scikit-learn's bundled digits (8x8 images, 10 classes, 1,797 samples): a fixed, standardised split; MLPs for it."""

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load(seed: int, device, test_size: float = 0.25):
    """(X_train (N, 64), y_train (N,), X_test (n, 64), y_test (n,)) on ``device``, standardised by the train split."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6  # constant pixels stay 0
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd

    def t(a, dt):
        return torch.as_tensor(np.asarray(a), dtype=dt, device=device)

    return t(Xtr, torch.float32), t(ytr, torch.long), t(Xte, torch.float32), t(yte, torch.long)


def mlp(sizes, dropout: float = 0.0):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Ensemble:
    """M independent MLPs trained at once with batched matmuls: weights (M, in, out), inputs (M, N, in).

    Adam is elementwise, so summing the M losses trains M independent models. Init as torch.nn.Linear.
    """

    def __init__(self, M: int, sizes, device, generator=None):
        self.params = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / a**0.5
            W = (torch.rand(M, a, b, generator=generator) * 2 - 1) * bound
            bias = (torch.rand(M, 1, b, generator=generator) * 2 - 1) * bound
            self.params += [W.to(device).requires_grad_(), bias.to(device).requires_grad_()]

    def __call__(self, X):  # X: (M, N, in) -> (M, N, out)
        h = X
        n = len(self.params) // 2
        for i in range(n):
            h = torch.baddbmm(self.params[2 * i + 1], h, self.params[2 * i])
            if i < n - 1:
                h = torch.relu(h)
        return h
