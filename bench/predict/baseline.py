#!/usr/bin/python3
"""numpy + scipy baseline for `nt predict` (issue #9 item 5), and the request it is compared with.

  /usr/bin/python3 bench/predict/baseline.py gen DIR N M [K] [D] [MODE]
        writes DIR/{x_train,y_train,x_test}.npy and DIR/request.json (the same data for both sides)
  /usr/bin/python3 bench/predict/baseline.py run DIR
        the same prediction in numpy/scipy, as DIR/request.json asks; prints `elapsed_s <wall>`, writes DIR/numpy.npz

MODE: cov (default: t = None, compute_cov), means (t = None, means only) or finite (t = 1000 steps, compute_cov:
one eigendecomposition per kernel, as neural_tangents' finite-time branch).

Network (examples/predict.json): Dense(512, W_std=1.5, b_std=0.05) -> Relu -> Dense(1, 1.5, 0.05), NTK
parameterisation, inputs N(0, 1) of dimension D (default 64), K outputs (default 10), diag_reg 1e-4 (relative to
the mean diagonal), get = nngp and ntk; t and compute_cov as MODE says.

The baseline does what neural_tangents' gp_inference / gradient_descent_mse_ensemble does, written plainly: the
closed-form ReLU kernels (arc-cosine, Cho & Saul 2009; NTK recursion arXiv:1806.07572), then at t = None per kernel
one scipy cho_factor, cho_solve for the means and covariances, and matrix products; at finite t per kernel one
numpy eigh (LAPACK dsyevd, as jnp.linalg.eigh) and the products of neural_tangents' einsums in a cheap order.
Use /usr/bin/python3 (Debian numpy/scipy on the system OpenBLAS, the same library `nt` loads).
"""
import json, os, sys, time
import numpy as np
import scipy.linalg as sl

W_STD, B_STD, DIAG_REG, FINITE_T = 1.5, 0.05, 1e-4, 1000.0
MODES = ("cov", "means", "finite")


def gen(d, n, m, k=10, dim=64, mode="cov"):
    if mode not in MODES:
        sys.exit(f"MODE must be one of {MODES}, got {mode!r}")
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
        "get": ["nngp", "ntk"], "t": FINITE_T if mode == "finite" else None, "diag_reg": DIAG_REG,
        "learning_rate": 1, "compute_cov": mode != "means", "out": "out/pred",
        "overwrite": True}  # each timed run writes the same files again
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
    req = json.load(open(os.path.join(d, "request.json")))
    cov, t = req["compute_cov"], req["t"]
    xtr = np.load(os.path.join(d, "x_train.npy"))
    ytr = np.load(os.path.join(d, "y_train.npy"))
    xte = np.load(os.path.join(d, "x_test.npy"))
    t0 = time.perf_counter()
    k_dd, th_dd = kernels(xtr, None)
    k_td, th_td = kernels(xte, xtr)
    k_tt = kernels(xte, None)[0] if cov else None
    n = k_dd.shape[0]

    def regularised(a):
        a = (a + a.T) / 2
        a[np.diag_indices(n)] += DIAG_REG * np.trace(a) / n
        return a

    out = {}
    if t is None:
        def fac(a):
            return sl.cho_factor(regularised(a), lower=True, overwrite_a=True, check_finite=False)

        # NNGP posterior: K*·K⁻¹·y, K** − K*·K⁻¹·K*ᵀ.
        ck = fac(k_dd)
        out["nngp_mean"] = k_td @ sl.cho_solve(ck, ytr, check_finite=False)
        if cov:
            out["nngp_cov"] = k_tt - k_td @ sl.cho_solve(ck, k_td.T, check_finite=False)
        del ck
        # NTK ensemble (arXiv:1902.06720 eq. 16, t = ∞): Θ*·Θ⁻¹·y and
        # K** + Θ*·Θ⁻¹·K·Θ⁻¹·Θ*ᵀ − (Θ*·Θ⁻¹·K*ᵀ + transpose), K the unregularised NNGP.
        k_dd = (k_dd + k_dd.T) / 2
        ct = fac(th_dd)
        out["ntk_mean"] = th_td @ sl.cho_solve(ct, ytr, check_finite=False)
        if cov:
            term1 = sl.cho_solve(ct, th_td.T, check_finite=False)
            term2 = th_td @ sl.cho_solve(ct, k_td.T, check_finite=False)
            out["ntk_cov"] = k_tt + term1.T @ (k_dd @ term1) - term2 - term2.T
    else:
        # Finite time (neural_tangents' einsums): s = η·t / y.size, per kernel one eigh of the regularised block.
        s = req["learning_rate"] * t / ytr.size
        k_sym = (k_dd + k_dd.T) / 2

        def neg_inv_expm1(lam, s):
            # (1 − e^{−λs}) / λ, with its limit s at λ = 0.
            safe = np.where(lam == 0, 1.0, lam)
            return np.where(lam == 0, s, -np.expm1(-lam * s) / safe)

        for g, dd, td in (("nngp", k_dd, k_td), ("ntk", th_dd, th_td)):
            lam, v = np.linalg.eigh(regularised(dd))
            lam = np.maximum(lam, 0.0)
            a = td @ v                                                     # K*·V (M, N)
            w = neg_inv_expm1(lam, s)
            out[g + "_mean"] = (a * w) @ (v.T @ ytr)
            if not cov:
                continue
            if g == "nngp":
                out["nngp_cov"] = k_tt - (a * neg_inv_expm1(lam, 2 * s)) @ a.T
            else:
                term1 = v @ (a * w).T                                      # V·diag(w)·Vᵀ·Θ*ᵀ (N, M)
                term2 = (a * w) @ (v.T @ k_td.T)                           # Θ*·V·diag(w)·Vᵀ·K*ᵀ (M, M)
                out["ntk_cov"] = k_tt + term1.T @ (k_sym @ term1) - term2 - term2.T
            del v, a
    for g in ("nngp", "ntk"):
        if g + "_cov" in out:
            c = out[g + "_cov"]
            out[g + "_cov"] = (c + c.T) / 2
    elapsed = time.perf_counter() - t0
    np.savez(os.path.join(d, "numpy.npz"), **out)
    print("elapsed_s %.3f" % elapsed)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "gen":
        rest = sys.argv[5:]
        mode = rest.pop() if rest and rest[-1] in MODES else "cov"
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *[int(a) for a in rest[:2]], mode=mode)
    elif len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        sys.exit(__doc__)
