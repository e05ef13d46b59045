"""Experiment 6: L1 vs L2 penalty on a multinomial logistic regression (digits): sparsity against strength."""

import warnings

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from .common import Measurement

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {  # C = 1 / penalty strength; max_iter bounds saga's passes over the data
    "quick": {"Cs": [1.0, 0.1, 0.01], "max_iter": 300},
    "full": {"Cs": [10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003], "max_iter": 2000},
}

CLAIM = (
    "As the penalty grows, L1 drives more and more weights exactly to zero while L2 only shrinks them "
    "(none reaches zero): L1 gives sparse solutions."
)


def run(ctx, Cs: list[float], max_iter: int) -> Measurement:
    X, y = load_digits(return_X_y=True)
    X = X[:, X.std(0) > 0]  # drop always-blank pixels: their weights are 0 under any penalty
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=ctx.seed, stratify=y)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)

    new_api = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8)  # `penalty` deprecated in 1.8
    out = {"C": Cs, "lambda": [1 / c for c in Cs], "n_features": int(X.shape[1]), "n_classes": 10,
           "n_weights": int(X.shape[1]) * 10, "solver": "saga", "zero_frac": {}, "test_acc": {},
           "abs_weights": {}}
    for pen in ("l1", "l2"):
        zf, accs = [], []
        for C in Cs:
            ratio = 1.0 if pen == "l1" else 0.0
            kw = dict(l1_ratio=ratio) if new_api else dict(penalty="elasticnet", l1_ratio=ratio)
            m = LogisticRegression(C=C, solver="saga", max_iter=max_iter, tol=1e-4, random_state=ctx.seed, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                m.fit(Xtr, ytr)
            W = m.coef_  # (10, n_features)
            zf.append(float((W == 0).mean()))
            accs.append(float(m.score(Xte, yte)))
            if C == 0.1:  # the weight magnitudes at one strength, for the histogram
                out["abs_weights"][pen] = np.sort(np.abs(W).ravel()).tolist()
            ctx.log(f"{pen} C={C:<6} zero weights {zf[-1]:.1%}  test acc {accs[-1]:.3f}")
        out["zero_frac"][pen], out["test_acc"][pen] = zf, accs

    return Measurement(model="multinomial logistic regression (saga), digits standardised", claim=CLAIM, data=out,
                       packages=("scikit-learn",))
