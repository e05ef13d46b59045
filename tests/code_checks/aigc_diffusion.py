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
