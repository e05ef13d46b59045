"""Checks for the code cards of sections 4.1 (generative model families) and 4.2 (diffusion models).

Each card's NumPy snippet is compared with an independent reference:

- the VAE's Gaussian KL against ``torch.distributions.kl_divergence`` and a Monte Carlo estimate built from
  log-densities written out here; the reparameterised samples against their mean, variance and derivatives;
- the DDPM closed-form forward process against iterating the one-step process many times (many samples, fixed
  seed), and the simple loss against a plain loop;
- the ancestral step against the posterior mean written with the x0-parameterisation, and a whole reverse chain with
  the exact noise predictor of Gaussian data against the data distribution;
- the DDIM step: deterministic at eta = 0 (independent of the noise), the DDPM posterior variance at eta = 1, and a
  deterministic few-step chain with the exact predictor landing on the data distribution;
- flow matching: the loss against a loop, and Euler integration of the exact marginal velocity of Gaussian data
  against the data distribution.

For Gaussian data x0 ~ N(m, s^2) every quantity is analytic: x_t ~ N(a m, a^2 s^2 + b^2) with a = sqrt(abar),
b = sqrt(1 - abar), and the MMSE noise predictor is E[eps | x_t] = b (x_t - a m) / (a^2 s^2 + b^2).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from tests.code_checks import check


# ---------------------------------------------------------------- 4.1 VAE

def _log_normal(x, mu, var):
    return -0.5 * (np.log(2 * math.pi * var) + (x - mu) ** 2 / var)


@check("vae-code")
def _vae(ns):
    reparameterize, gaussian_kl, vae_loss = ns["reparameterize"], ns["gaussian_kl"], ns["vae_loss"]
    rng = np.random.default_rng(0)
    B, d = 5, 3
    mu = rng.normal(size=(B, d))
    logvar = rng.normal(scale=0.7, size=(B, d))
    # closed form against torch's KL of two diagonal Gaussians
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    p = torch.distributions.Normal(torch.zeros(B, d, dtype=torch.float64), torch.ones(B, d, dtype=torch.float64))
    ref = torch.distributions.kl_divergence(q, p).sum(-1).numpy()
    kl = gaussian_kl(mu, logvar)
    assert kl.shape == (B,)
    np.testing.assert_allclose(kl, ref, rtol=1e-12)
    assert np.all(kl >= 0)
    np.testing.assert_allclose(gaussian_kl(np.zeros((2, 4)), np.zeros((2, 4))), 0.0, atol=1e-15)
    # reparameterised samples: right shape, mean and variance; Monte Carlo KL = E_q[log q - log p]
    n = 200_000
    mu1, lv1 = mu[:1].repeat(n, 0), logvar[:1].repeat(n, 0)
    z = reparameterize(mu1, lv1, np.random.default_rng(1))
    assert z.shape == (n, d)
    np.testing.assert_allclose(z.mean(0), mu[0], atol=5 * np.exp(0.5 * logvar[0]).max() / math.sqrt(n))
    np.testing.assert_allclose(z.var(0), np.exp(logvar[0]), rtol=0.02)
    mc = (_log_normal(z, mu1, np.exp(lv1)) - _log_normal(z, 0.0, 1.0)).sum(-1)
    np.testing.assert_allclose(mc.mean(), kl[0], atol=5 * mc.std() / math.sqrt(n))
    # z is a differentiable function of (mu, logvar) given the noise: dz/dmu = 1, dz/dlogvar = 0.5 * (z - mu)
    h = 1e-6
    z0 = reparameterize(mu, logvar, np.random.default_rng(2))
    z_mu = reparameterize(mu + h, logvar, np.random.default_rng(2))
    z_lv = reparameterize(mu, logvar + h, np.random.default_rng(2))
    np.testing.assert_allclose((z_mu - z0) / h, 1.0, rtol=1e-5)
    np.testing.assert_allclose((z_lv - z0) / h, 0.5 * (z0 - mu), rtol=1e-4, atol=1e-6)
    # the loss: Gaussian decoder with unit variance (constant dropped) plus KL, averaged over the batch
    x, x_rec = rng.normal(size=(B, 7)), rng.normal(size=(B, 7))
    nll = -torch.distributions.Normal(torch.tensor(x_rec), 1.0).log_prob(torch.tensor(x)).sum(-1).numpy()
    nll -= 7 * 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(vae_loss(x, x_rec, mu, logvar), np.mean(nll + ref), rtol=1e-12)


# ---------------------------------------------------------------- 4.2 DDPM

def _gauss_oracle(m, s, alphas_bar):
    """The exact noise predictor E[eps | x_t] for data x0 ~ N(m, s^2) (elementwise), t in 1..T."""
    def eps_model(x_t, t):
        ab = np.asarray(alphas_bar)[np.asarray(t) - 1]
        ab = ab[:, None] if np.ndim(ab) else ab
        a, b = np.sqrt(ab), np.sqrt(1.0 - ab)
        return b * (x_t - a * m) / (a * a * s * s + b * b)
    return eps_model


@check("ddpm-train-code")
def _ddpm_train(ns):
    linear_schedule, q_sample, ddpm_loss = ns["linear_schedule"], ns["q_sample"], ns["ddpm_loss"]
    betas, alphas_bar = linear_schedule()
    assert betas.shape == alphas_bar.shape == (1000,)
    np.testing.assert_allclose(betas[[0, -1]], [1e-4, 0.02], rtol=1e-12)
    prod, ref = 1.0, []
    for b in betas:
        prod *= 1.0 - b
        ref.append(prod)
    np.testing.assert_allclose(alphas_bar, ref, rtol=1e-10)
    # closed form q(x_t | x0) against iterating the one-step process x_s = sqrt(1-b_s) x_{s-1} + sqrt(b_s) z
    betas, alphas_bar = linear_schedule(T=40, b1=1e-3, bT=0.2)
    rng = np.random.default_rng(3)
    n, D = 100_000, 2
    x0 = rng.uniform(-1, 1, size=(n, D)) + np.array([2.0, -1.0])
    x = x0.copy()
    for s in range(1, 41):
        x = np.sqrt(1 - betas[s - 1]) * x + np.sqrt(betas[s - 1]) * rng.standard_normal((n, D))
        if s in (1, 7, 20, 40):
            t = np.full(n, s)
            xc = q_sample(x0, t, rng.standard_normal((n, D)), alphas_bar)
            assert xc.shape == (n, D)
            for xs in (x, xc):  # same conditional mean, variance and Gaussian shape given x0
                r = xs - np.sqrt(alphas_bar[s - 1]) * x0
                var = 1 - alphas_bar[s - 1]
                np.testing.assert_allclose(r.mean(0), 0.0, atol=5 * math.sqrt(var / n))
                np.testing.assert_allclose(r.var(0), var, rtol=0.02)
                np.testing.assert_allclose((r ** 4).mean(0) / var ** 2, 3.0, rtol=0.05)
                np.testing.assert_allclose((r * x0).mean(0) - r.mean(0) * x0.mean(0), 0.0, atol=0.02)
            np.testing.assert_allclose(x.mean(0), xc.mean(0), atol=0.02)
            np.testing.assert_allclose(np.cov(x.T), np.cov(xc.T), atol=0.02)
    # exact values with per-example t
    t = rng.integers(1, 41, size=6)
    x0s, eps = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    ref = np.array([math.sqrt(alphas_bar[k - 1]) * x0s[i] + math.sqrt(1 - alphas_bar[k - 1]) * eps[i]
                    for i, k in enumerate(t)])
    np.testing.assert_allclose(q_sample(x0s, t, eps, alphas_bar), ref, rtol=1e-12)
    # the loss: t in 1..T drawn per example, x_t built with the closed form, MSE against the injected noise
    seen = []

    def recording_model(x_t, t):
        seen.append((x_t.copy(), np.asarray(t).copy()))
        return 0.5 * x_t

    xb = rng.normal(size=(256, 3))
    loss = ddpm_loss(recording_model, xb, alphas_bar, np.random.default_rng(4))
    (x_t, t), = seen
    assert t.shape == (256,) and t.min() >= 1 and t.max() <= 40 and len(np.unique(t)) > 20
    ab = alphas_bar[t - 1][:, None]
    eps = (x_t - np.sqrt(ab) * xb) / np.sqrt(1 - ab)
    np.testing.assert_allclose(float(loss), np.mean((eps - 0.5 * x_t) ** 2), rtol=1e-9)
    np.testing.assert_allclose(eps.var(), 1.0, rtol=0.1)  # the recovered noise is standard normal
    # with Gaussian data, the exact predictor reaches the minimum E_t[a^2 s^2 / (a^2 s^2 + b^2)]
    betas, alphas_bar = linear_schedule(T=100, b1=1e-3, bT=0.1)
    m, s = 0.7, 0.4
    xg = m + s * rng.standard_normal((200_000, 1))
    best = ddpm_loss(_gauss_oracle(m, s, alphas_bar), xg, alphas_bar, np.random.default_rng(5))
    expect = np.mean(alphas_bar * s * s / (alphas_bar * s * s + 1 - alphas_bar))
    np.testing.assert_allclose(best, expect, rtol=0.03)
    worse = ddpm_loss(lambda x_t, t: np.zeros_like(x_t), xg, alphas_bar, np.random.default_rng(5))
    np.testing.assert_allclose(worse, 1.0, rtol=0.02)


def _posterior_mean(x_t, x0, t, betas, alphas_bar):
    """tilde mu_t(x_t, x0) of q(x_{t-1} | x_t, x0)."""
    ab, beta = alphas_bar[t - 1], betas[t - 1]
    ab_prev = alphas_bar[t - 2] if t > 1 else 1.0
    return (math.sqrt(ab_prev) * beta / (1 - ab) * x0
            + math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab) * x_t)


@check("ddpm-sample-code")
def _ddpm_sample(ns):
    step, loop = ns["p_sample_step"], ns["p_sample_loop"]
    rng = np.random.default_rng(6)
    T = 50
    betas = np.linspace(1e-3, 0.3, T)
    alphas_bar = np.cumprod(1 - betas)
    x_t, eps_hat, z = rng.normal(size=(3, 4, 5))
    for t in (T, 17, 2):
        # the mean is the posterior mean with x0 replaced by its estimate from eps_hat; the noise has sd sqrt(beta)
        x0_hat = (x_t - math.sqrt(1 - alphas_bar[t - 1]) * eps_hat) / math.sqrt(alphas_bar[t - 1])
        mean = _posterior_mean(x_t, x0_hat, t, betas, alphas_bar)
        out = step(x_t, t, eps_hat, betas, alphas_bar, z)
        np.testing.assert_allclose(out, mean + math.sqrt(betas[t - 1]) * z, rtol=1e-10, atol=1e-12)
    # the last step adds no noise and returns x0_hat (the posterior mean at t = 1 is x0)
    x0_hat = (x_t - math.sqrt(1 - alphas_bar[0]) * eps_hat) / math.sqrt(alphas_bar[0])
    np.testing.assert_allclose(step(x_t, 1, eps_hat, betas, alphas_bar, z), x0_hat, rtol=1e-10)
    np.testing.assert_allclose(step(x_t, 1, eps_hat, betas, alphas_bar, 0 * z), x0_hat, rtol=1e-10)
    # the whole chain with the exact predictor of Gaussian data samples that data distribution
    T = 1000
    betas = np.linspace(1e-4, 0.02, T)
    alphas_bar = np.cumprod(1 - betas)
    m, s = np.array([1.5, -0.5]), np.array([0.5, 0.2])
    calls = []

    def oracle(x, t):
        calls.append(t)
        return _gauss_oracle(m, s, alphas_bar)(x, t)

    x = loop(oracle, (20_000, 2), betas, alphas_bar, np.random.default_rng(7))
    assert calls == list(range(T, 0, -1))
    assert x.shape == (20_000, 2)
    np.testing.assert_allclose(x.mean(0), m, atol=0.02)
    np.testing.assert_allclose(x.std(0), s, rtol=0.025)


# ---------------------------------------------------------------- 4.2 DDIM

@check("ddim-step-code")
def _ddim(ns):
    step, sample = ns["ddim_step"], ns["ddim_sample"]
    rng = np.random.default_rng(8)
    x_t, eps, z1, z2 = rng.normal(size=(4, 6, 3))
    ab_t, ab_prev = 0.3, 0.55
    # eta = 0 is deterministic: the noise is ignored, and the step is the Euler step of d xbar = eps d sigmabar
    out0 = step(x_t, eps, ab_t, ab_prev, 0.0, z1)
    np.testing.assert_array_equal(out0, step(x_t, eps, ab_t, ab_prev, 0.0, z2))
    np.testing.assert_array_equal(out0, step(x_t, eps, ab_t, ab_prev))
    sbar = lambda ab: math.sqrt((1 - ab) / ab)  # noqa: E731
    xbar = x_t / math.sqrt(ab_t) + (sbar(ab_prev) - sbar(ab_t)) * eps
    np.testing.assert_allclose(out0, math.sqrt(ab_prev) * xbar, rtol=1e-12)
    # eta = 1 between consecutive steps is the DDPM step with sigma^2 = tilde beta
    betas = np.linspace(1e-3, 0.3, 30)
    alphas_bar = np.cumprod(1 - betas)
    for t in (30, 12, 2):
        a_t, a_p = alphas_bar[t - 1], alphas_bar[t - 2]
        x0_hat = (x_t - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        mean = _posterior_mean(x_t, x0_hat, t, betas, alphas_bar)
        tilde_beta = (1 - a_p) / (1 - a_t) * betas[t - 1]
        np.testing.assert_allclose(step(x_t, eps, a_t, a_p, 1.0, z1), mean + math.sqrt(tilde_beta) * z1,
                                   rtol=1e-10, atol=1e-12)
    # intermediate eta: the noise scale is eta * sqrt(tilde beta)
    a_t, a_p = alphas_bar[9], alphas_bar[8]
    tb = (1 - a_p) / (1 - a_t) * betas[9]
    d = step(x_t, eps, a_t, a_p, 0.5, z1) - step(x_t, eps, a_t, a_p, 0.5, 0 * z1)
    np.testing.assert_allclose(d, 0.5 * math.sqrt(tb) * z1, rtol=1e-10)
    # a few deterministic steps with the exact predictor of Gaussian data land on that distribution
    T = 1000
    betas = np.linspace(1e-4, 0.02, T)
    alphas_bar = np.cumprod(1 - betas)
    m, s = np.array([1.5, -0.5]), np.array([0.5, 0.2])
    oracle = _gauss_oracle(m, s, alphas_bar)
    calls = []

    def model(x, t):
        calls.append(t)
        return oracle(x, t)

    taus = list(range(1, T + 1, 20))  # 50 steps: 1, 21, ..., 981
    xT = np.random.default_rng(9).standard_normal((20_000, 2))
    x = sample(model, xT.copy(), alphas_bar, taus, 0.0, np.random.default_rng(10))
    assert calls == taus[::-1]

    def exact_map(x_start, t_start):
        """The probability-flow ODE of Gaussian data solved exactly: in xbar = x / sqrt(abar) and
        sigmabar^2 = (1 - abar) / abar, xbar - m grows like sqrt(s^2 + sigmabar^2)."""
        a = alphas_bar[t_start - 1]
        return m + (x_start / math.sqrt(a) - m) * s / np.sqrt(s ** 2 + (1 - a) / a)

    # first order: the error against the exact ODE solution halves when the step count doubles
    errs = []
    for stride in (20, 10, 5):
        taus_k = list(range(1, T + 1, stride))
        xk = sample(oracle, xT.copy(), alphas_bar, taus_k, 0.0, np.random.default_rng(10))
        errs.append(np.abs((xk - exact_map(xT, taus_k[-1])) / s).max())
    assert 1.7 < errs[0] / errs[1] < 2.3 and 1.7 < errs[1] / errs[2] < 2.3, errs
    x_all = sample(oracle, xT.copy(), alphas_bar, range(1, T + 1), 0.0, np.random.default_rng(10))
    assert np.abs((x_all - exact_map(xT, T)) / s).max() < 0.05
    np.testing.assert_allclose(x_all.mean(0), m, atol=0.02)
    np.testing.assert_allclose(x_all.std(0), s, rtol=0.02)
    # deterministic: the same x_T gives the same samples whatever the generator; it is a monotone map
    x_again = sample(oracle, xT.copy(), alphas_bar, taus, 0.0, np.random.default_rng(11))
    np.testing.assert_array_equal(x, x_again)
    assert np.all(np.diff(x[np.argsort(xT[:, 0]), 0]) > 0)
    # eta = 1 on all T steps (DDPM with tilde beta) also samples the data distribution
    x1 = sample(oracle, xT.copy(), alphas_bar, range(1, T + 1), 1.0, np.random.default_rng(12))
    np.testing.assert_allclose(x1.mean(0), m, atol=0.02)
    np.testing.assert_allclose(x1.std(0), s, rtol=0.03)
    assert not np.allclose(x1, x)


# ---------------------------------------------------------------- 4.2 flow matching

def _gauss_velocity(m, s):
    """Marginal velocity E[X1 - X0 | X_t = x] of the straight path X_t = (1-t) X0 + t X1, X0 ~ N(0, 1),
    X1 ~ N(m, s^2) independent (elementwise)."""
    def v(x, t):
        t = np.asarray(t, dtype=float)[:, None]
        var = (1 - t) ** 2 + t ** 2 * s ** 2
        cov = t * s ** 2 - (1 - t)
        return m + cov / var * (x - t * m)
    return v


@check("flow-matching-code")
def _flow_matching(ns):
    fm_loss, euler = ns["fm_loss"], ns["euler_sample"]
    rng = np.random.default_rng(13)
    # the loss: x_t on the straight line, t ~ U[0, 1] per example, target x1 - x0
    seen = []

    def recording(x_t, t):
        seen.append((x_t.copy(), np.asarray(t).copy()))
        return np.sin(x_t) + np.asarray(t)[:, None]

    x1 = rng.normal(loc=2.0, size=(4000, 3))
    loss = fm_loss(recording, x1, np.random.default_rng(14))
    (x_t, t), = seen
    assert t.shape == (4000,) and 0 <= t.min() and t.max() <= 1
    assert abs(t.mean() - 0.5) < 0.02 and abs(t.var() - 1 / 12) < 0.01
    x0 = (x_t - t[:, None] * x1) / (1 - t[:, None])
    np.testing.assert_allclose(x0.mean(), 0.0, atol=0.05)
    np.testing.assert_allclose(x0.var(), 1.0, rtol=0.05)
    ref = np.mean((np.sin(x_t) + t[:, None] - (x1 - x0)) ** 2)
    np.testing.assert_allclose(float(loss), ref, rtol=1e-8)
    # with Gaussian data the exact marginal velocity reaches the minimum E_t[Var(X1 - X0 | X_t)]
    m, s = 1.2, 0.3
    xg = m + s * rng.standard_normal((400_000, 1))
    best = fm_loss(_gauss_velocity(m, s), xg, np.random.default_rng(15))
    tt = (np.arange(100_000) + 0.5) / 100_000
    cond_var = (1 + s ** 2) - (tt * s ** 2 - (1 - tt)) ** 2 / ((1 - tt) ** 2 + tt ** 2 * s ** 2)
    np.testing.assert_allclose(best, cond_var.mean(), rtol=0.02)
    assert best < fm_loss(lambda x, t: np.full_like(x, m), xg, np.random.default_rng(15))
    # Euler: the same iterates as a reference loop; exact in one step for a constant field;
    # first-order convergence on dx/dt = a x; samples the data with the exact velocity
    v = lambda x, t: np.cos(3 * x) * (1 + np.asarray(t)[:, None])  # noqa: E731
    xs = rng.normal(size=(7, 2))
    ref = xs.copy()
    for i in range(13):
        ref = ref + v(ref, np.full(7, i / 13)) / 13
    np.testing.assert_allclose(euler(v, xs, 13), ref, rtol=1e-12)
    c = rng.normal(size=(1, 2))
    np.testing.assert_allclose(euler(lambda x, t: np.broadcast_to(c, x.shape), xs, 1), xs + c, rtol=1e-12)
    errs = [np.abs(euler(lambda x, t: 0.8 * x, xs, n) - xs * math.exp(0.8)).max() for n in (20, 40, 80)]
    assert 1.8 < errs[0] / errs[1] < 2.2 and 1.8 < errs[1] / errs[2] < 2.2
    m2, s2 = np.array([1.5, -0.5]), np.array([0.5, 0.2])
    # the exact flow of independent Gaussian endpoints is X_t = t m + sqrt((1-t)^2 + t^2 s^2) z0, so the ODE
    # maps z0 to m + s z0; Euler's error against it halves when the step count doubles
    z0 = np.random.default_rng(16).standard_normal((20_000, 2))
    errs = [np.abs((euler(_gauss_velocity(m2, s2), z0, n) - (m2 + s2 * z0)) / s2).max() for n in (50, 100, 200)]
    assert 1.8 < errs[0] / errs[1] < 2.2 and 1.8 < errs[1] / errs[2] < 2.2, errs
    out = euler(_gauss_velocity(m2, s2), z0, 400)
    assert np.abs((out - (m2 + s2 * z0)) / s2).max() < 0.04
    np.testing.assert_allclose(out.mean(0), m2, atol=0.02)
    np.testing.assert_allclose(out.std(0), s2, rtol=0.02)
