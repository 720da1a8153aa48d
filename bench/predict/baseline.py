#!/usr/bin/python3
"""numpy + scipy baseline for `nt predict` (issue #9 item 5), and the request it is compared with.

  /usr/bin/python3 bench/predict/baseline.py gen DIR N M [K] [D]   writes DIR/{x_train,y_train,x_test}.npy and
                                                                   DIR/request.json (the same data for both sides)
  /usr/bin/python3 bench/predict/baseline.py run DIR               the same prediction in numpy/scipy; prints
                                                                   `elapsed_s <wall>` and writes DIR/numpy.npz

Network (examples/predict.json): Dense(512, W_std=1.5, b_std=0.05) -> Relu -> Dense(1, 1.5, 0.05), NTK
parameterisation, inputs N(0, 1) of dimension D (default 64), K outputs (default 10), diag_reg 1e-4 (relative to
the mean diagonal), t = None (infinite time), get = nngp and ntk, compute_cov = true.

The baseline does what neural_tangents' gp_inference / gradient_descent_mse_ensemble(t=None) does, written
plainly: the closed-form ReLU kernels (arc-cosine, Cho & Saul 2009; NTK recursion arXiv:1806.07572), then per
kernel one scipy cho_factor, cho_solve for the means and covariances, and matrix products.
Use /usr/bin/python3 (Debian numpy/scipy on the system OpenBLAS, the same library `nt` loads).
"""
import json, os, sys, time
import numpy as np
import scipy.linalg as sl

W_STD, B_STD, DIAG_REG = 1.5, 0.05, 1e-4


def gen(d, n, m, k=10, dim=64):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(2026)
    np.save(os.path.join(d, "x_train.npy"), rng.standard_normal((n, dim)))
    np.save(os.path.join(d, "y_train.npy"), rng.standard_normal((n, k)))
    np.save(os.path.join(d, "x_test.npy"), rng.standard_normal((m, dim)))
    req = {
        "arch": {"layer": "serial", "layers": [
            {"layer": "Dense", "out_dim": 512, "W_std": W_STD, "b_std": B_STD},
            {"layer": "Relu"},
            {"layer": "Dense", "out_dim": 1, "W_std": W_STD, "b_std": B_STD}]},
        "x_train": "x_train.npy", "y_train": "y_train.npy", "x_test": "x_test.npy",
        "get": ["nngp", "ntk"], "t": None, "diag_reg": DIAG_REG, "learning_rate": 1,
        "compute_cov": True, "out": "out/pred"}
    with open(os.path.join(d, "request.json"), "w") as f:
        json.dump(req, f, indent=1)


def kernels(x1, x2):
    """(nngp, ntk) of Dense -> Relu -> Dense between x1 and x2 (x2 None: x1 with itself)."""
    same = x2 is None
    x2 = x1 if same else x2
    dim = x1.shape[1]
    w2, b2 = W_STD ** 2, B_STD ** 2
    v1 = w2 * np.einsum("ij,ij->i", x1, x1) / dim + b2
    v2 = v1 if same else w2 * np.einsum("ij,ij->i", x2, x2) / dim + b2
    k = w2 * (x1 @ x2.T) / dim + b2          # Dense 1: NNGP = NTK
    norm = np.sqrt(np.outer(v1, v2))
    c = np.clip(k / norm, -1.0, 1.0)
    theta = np.arccos(c)
    nngp = norm * (np.sin(theta) + (np.pi - theta) * c) / (2 * np.pi)   # Relu
    ntk = k * (np.pi - theta) / (2 * np.pi)                             # Relu: Θ·E[φ'φ']
    nngp = w2 * nngp + b2                                               # Dense 2
    ntk = nngp + w2 * ntk
    return nngp, ntk


def run(d):
    xtr = np.load(os.path.join(d, "x_train.npy"))
    ytr = np.load(os.path.join(d, "y_train.npy"))
    xte = np.load(os.path.join(d, "x_test.npy"))
    t0 = time.perf_counter()
    k_dd, th_dd = kernels(xtr, None)
    k_td, th_td = kernels(xte, xtr)
    k_tt, _ = kernels(xte, None)
    n = k_dd.shape[0]

    def fac(a):
        a = (a + a.T) / 2
        a[np.diag_indices(n)] += DIAG_REG * np.trace(a) / n
        return sl.cho_factor(a, lower=True, overwrite_a=True, check_finite=False)

    # NNGP posterior: K*·K⁻¹·y, K** − K*·K⁻¹·K*ᵀ.
    ck = fac(k_dd)
    mean_nngp = k_td @ sl.cho_solve(ck, ytr, check_finite=False)
    cov_nngp = k_tt - k_td @ sl.cho_solve(ck, k_td.T, check_finite=False)
    del ck
    # NTK ensemble (arXiv:1902.06720 eq. 16, t = ∞): Θ*·Θ⁻¹·y and
    # K** + Θ*·Θ⁻¹·K·Θ⁻¹·Θ*ᵀ − (Θ*·Θ⁻¹·K*ᵀ + transpose), K the unregularised NNGP.
    k_dd = (k_dd + k_dd.T) / 2
    ct = fac(th_dd)
    mean_ntk = th_td @ sl.cho_solve(ct, ytr, check_finite=False)
    term1 = sl.cho_solve(ct, th_td.T, check_finite=False)
    term2 = th_td @ sl.cho_solve(ct, k_td.T, check_finite=False)
    cov_ntk = k_tt + term1.T @ (k_dd @ term1) - term2 - term2.T
    cov_ntk = (cov_ntk + cov_ntk.T) / 2
    cov_nngp = (cov_nngp + cov_nngp.T) / 2
    elapsed = time.perf_counter() - t0
    np.savez(os.path.join(d, "numpy.npz"), nngp_mean=mean_nngp, nngp_cov=cov_nngp, ntk_mean=mean_ntk, ntk_cov=cov_ntk)
    print("elapsed_s %.3f" % elapsed)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *[int(a) for a in sys.argv[5:7]])
    elif len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        sys.exit(__doc__)
