"""Gaussian-process surrogate on architecture embeddings (BoTorch / GPyTorch).

``GPSurrogate().fit(X, y)`` then ``predict(X) -> (mean, std)`` in the units of ``y``, and
``log_ei(X, best)`` for Bayesian optimisation.  A Matern-5/2 kernel, as in the published
embedding BO, but with its hyper-parameters fitted by marginal likelihood where the paper fixes
them (that method as published: :mod:`searchers.embedding_paper`); inputs are min-max scaled to
the unit cube and outputs standardised inside BoTorch.

A hyper-parameter fit that fails (BoTorch gives up after its retries, e.g. on a degenerate
likelihood surface) does not stop a search: the surrogate keeps a fallback's hyper-parameters
(the searcher's last good fit) or BoTorch's initial ones, says so in a warning and in
``fit_failed_``, and the next fit tries again.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.stats import norm, rankdata
from botorch.acquisition.analytic import _log_ei_helper  # the numerically stable log h(u) of LogEI
from botorch.exceptions.errors import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NotPSDError
from search_spaces.base import check_choice


class GPSurrogate:
    """Exact GP regression, scikit-learn shaped (hyper-parameters in ``__init__``, state in ``*_``).

    Args:
        nu: Matern smoothness (2.5 = Matern-5/2).
        ard: one length-scale per input dimension (worth it only with few dimensions).
        max_train: fit on at most the ``max_train`` best observations, so the cost per fit
            stays bounded however long a search runs.
    """

    def __init__(self, nu: float = 2.5, ard: bool = False, max_train: int | None = 500):
        self.nu = nu
        self.ard = ard
        self.max_train = max_train

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        hyper_from: "GPSurrogate | None" = None,
        fallback: "GPSurrogate | None" = None,
    ) -> "GPSurrogate":
        """Fit hyper-parameters by marginal likelihood, or, with ``hyper_from``, take that
        surrogate's (mean, kernel, noise) and only condition on the data: a Cholesky instead of
        an optimisation, which is what keeps a long search's cost per step flat.

        If the fit fails, ``fallback``'s hyper-parameters are taken (BoTorch's initial ones
        without it) and ``fit_failed_`` is set, with a warning."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.ndim != 2 or len(X) != len(y) or len(y) < 2:
            raise ValueError(f"GPSurrogate.fit needs X [n, d] and y [n] with n >= 2; got {X.shape} and {y.shape}")
        if self.max_train and len(y) > self.max_train:
            keep = np.argsort(-y)[: self.max_train]
            X, y = X[keep], y[keep]
        train_x, train_y = torch.from_numpy(X), torch.from_numpy(y).unsqueeze(-1)
        kernel = ScaleKernel(MaternKernel(nu=self.nu, ard_num_dims=X.shape[1] if self.ard else None))
        self.model_ = SingleTaskGP(
            train_x,
            train_y,
            covar_module=kernel,
            input_transform=Normalize(d=X.shape[1]),
            outcome_transform=Standardize(m=1),
        )
        self.fit_failed_ = False
        if hyper_from is None:
            try:
                fit_gpytorch_mll(ExactMarginalLogLikelihood(self.model_.likelihood, self.model_))
            except (ModelFittingError, NotPSDError) as error:  # BoTorch has rolled the model back
                self.fit_failed_ = True
                source = "the last good fit's" if fallback is not None else "BoTorch's initial"
                warnings.warn(
                    f"GP hyper-parameter fit failed on {len(y)} points ({error}); using {source} hyper-parameters",
                    RuntimeWarning,
                    stacklevel=2,
                )
                hyper_from = fallback
        if hyper_from is not None:
            for part in ("mean_module", "covar_module", "likelihood"):
                getattr(self.model_, part).load_state_dict(getattr(hyper_from.model_, part).state_dict())
        self.model_.eval()
        self._factor = None  # the training covariance's Cholesky factor, made by the first predict
        self.best_ = float(y.max())
        return self

    @torch.no_grad()
    def predict(self, X: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at ``X`` (rows).

        The marginals are computed from the kernel and one Cholesky factor of the training
        covariance, not through ``model.posterior``: the posterior object builds each chunk's
        joint covariance, which a searcher scoring a pool of thousands never needs."""
        model = self.model_
        if getattr(self, "_factor", None) is None:
            train_x, train_y = model.train_inputs[0], model.train_targets
            noise = model.likelihood.noise.reshape(())
            covar = model.covar_module(train_x).to_dense() + noise * torch.eye(len(train_x), dtype=train_x.dtype)
            factor = psd_safe_cholesky(covar)  # adds jitter to a covariance that rounding left singular
            weights = torch.cholesky_solve((train_y - model.mean_module.constant).unsqueeze(-1), factor)
            self._factor = (train_x, factor, weights)
        train_x, factor, weights = self._factor
        scale = model.covar_module.outputscale
        y_mean, y_std = model.outcome_transform.means.reshape(()), model.outcome_transform.stdvs.reshape(())
        means, stds = [], []
        for start in range(0, len(X), chunk):
            x = model.input_transform(torch.as_tensor(X[start : start + chunk], dtype=torch.float64))
            cross = model.covar_module(x, train_x).to_dense()
            mean = model.mean_module.constant + (cross @ weights).squeeze(-1)
            half = torch.linalg.solve_triangular(factor, cross.T, upper=False)
            variance = (scale - (half * half).sum(0)).clamp_min(1e-12)
            means.append((mean * y_std + y_mean).numpy())
            stds.append((variance.sqrt() * y_std).numpy())
        return np.concatenate(means), np.concatenate(stds)

    def log_ei(self, X: np.ndarray, best: float | None = None, offset: np.ndarray | float = 0.0) -> np.ndarray:
        """log expected improvement over ``best`` (default: best observation) at ``X``, of the
        GP plus ``offset`` (a prior mean the GP was fitted around, per row of ``X``)."""
        mean, std = self.predict(X)
        return log_expected_improvement(mean + offset, std, self.best_ if best is None else best)


def log_expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """BoTorch's numerically stable LogEI of Gaussian marginals (its acquisition-function
    form evaluates a batched posterior, much slower for a pool of thousands)."""
    u = (np.asarray(mean) - best) / np.asarray(std)
    return np.log(std) + _log_ei_helper(torch.from_numpy(u)).numpy()


#: how targets are transformed before a GP fit: normal scores of their ranks, or not at all
WARPS = ("rank", "none")


def check_warp(warp: str) -> str:
    return check_choice("warp", warp, WARPS)


def warped(values: np.ndarray, warp: str) -> np.ndarray:
    """``values`` as :func:`normal_scores` (``warp="rank"``) or unchanged (``"none"``)."""
    return normal_scores(values) if check_warp(warp) == "rank" else np.asarray(values, dtype=np.float64)


def normal_scores(values: np.ndarray) -> np.ndarray:
    """``values`` as normal scores of their ranks (ties share a rank): a Gaussian copula, so
    a few collapsed architectures (NB201 has cells at 10 %) do not flatten a GP fitted to
    them around the good ones."""
    values = np.asarray(values, dtype=np.float64)
    return norm.ppf((rankdata(values) - 0.5) / len(values))
