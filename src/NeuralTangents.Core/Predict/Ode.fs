namespace NeuralTangents

open System

/// An adaptive explicit Runge–Kutta integrator: Dormand–Prince 5(4) with local extrapolation and the classic
/// step-size controller (Hairer, Nørsett & Wanner, "Solving ODEs I", §II.4–5), the scheme of jax's <c>odeint</c>
/// that neural_tangents' <c>gradient_descent</c> calls.
module internal PredictOde =

    // Butcher tableau of Dormand & Prince (1980).
    let private c2, c3, c4, c5 = 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0
    let private a21 = 1.0 / 5.0
    let private a31, a32 = 3.0 / 40.0, 9.0 / 40.0
    let private a41, a42, a43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
    let private a51, a52, a53, a54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
    let private a61, a62, a63, a64, a65 = 9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0
    let private b1, b3, b4, b5, b6 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
    // Error weights: 5th-order minus 4th-order weights.
    let private e1 = 35.0 / 384.0 - 5179.0 / 57600.0
    let private e3 = 500.0 / 1113.0 - 7571.0 / 16695.0
    let private e4 = 125.0 / 192.0 - 393.0 / 640.0
    let private e5 = -2187.0 / 6784.0 + 92097.0 / 339200.0
    let private e6 = 11.0 / 84.0 - 187.0 / 2100.0
    let private e7 = -1.0 / 40.0

    /// Default relative and absolute tolerances.
    let rtol, atol = 1e-10, 1e-10

    /// Largest number of accepted plus rejected steps before giving up.
    let maxSteps = 200_000

    let private combine (y: float[]) (h: float) (terms: (float * float[]) list) =
        let r = Array.copy y
        for (c, k) in terms do
            if c <> 0.0 then
                let hc = h * c
                for i in 0 .. r.Length - 1 do
                    r[i] <- r[i] + hc * k[i]
        r

    let private rmsScaled (y0: float[]) (y1: float[]) (v: float[]) =
        let mutable s = 0.0
        for i in 0 .. v.Length - 1 do
            let sc = atol + rtol * max (abs y0[i]) (abs y1[i])
            let q = v[i] / sc
            s <- s + q * q
        if v.Length = 0 then 0.0 else sqrt (s / float v.Length)

    /// Integrates dy/dτ = f(y) from τ = 0, returning y at each of the non-decreasing times τs (τs[0] ≥ 0).
    let integrate (f: float[] -> float[]) (y0: float[]) (taus: float[]) : float[][] =
        let out = Array.zeroCreate taus.Length
        let mutable y = Array.copy y0
        let mutable k1 = f y
        let mutable tau = 0.0
        // Initial step (Hairer et al. II.4): h = 0.01·‖y‖/‖f‖ with the error scale of y.
        let zeros = Array.zeroCreate y.Length
        let d0 = rmsScaled y zeros y
        let d1 = rmsScaled y zeros k1
        let mutable h = if d0 < 1e-5 || d1 < 1e-5 then 1e-6 else 0.01 * d0 / d1
        let mutable steps = 0
        for idx in 0 .. taus.Length - 1 do
            let target = taus[idx]
            while tau < target do
                steps <- steps + 1
                if steps > maxSteps then
                    raise (NeuralTangentsException(
                        ("gradient descent ODE: no convergence within " + string maxSteps + " steps before t·η = " + Show.g target + " (reached " + Show.g tau + "); the loss or learning rate makes the flow too stiff, try smaller times")))
                let hStep = min h (target - tau)
                let k2 = f (combine y hStep [ a21, k1 ])
                let k3 = f (combine y hStep [ a31, k1; a32, k2 ])
                let k4 = f (combine y hStep [ a41, k1; a42, k2; a43, k3 ])
                let k5 = f (combine y hStep [ a51, k1; a52, k2; a53, k3; a54, k4 ])
                let k6 = f (combine y hStep [ a61, k1; a62, k2; a63, k3; a64, k4; a65, k5 ])
                let yNew = combine y hStep [ b1, k1; b3, k3; b4, k4; b5, k5; b6, k6 ]
                let k7 = f yNew
                let errVec = Array.zeroCreate y.Length
                for i in 0 .. y.Length - 1 do
                    errVec[i] <- hStep * (e1 * k1[i] + e3 * k3[i] + e4 * k4[i] + e5 * k5[i] + e6 * k6[i] + e7 * k7[i])
                let err = rmsScaled y yNew errVec
                if not (Double.IsFinite err) then
                    raise (NeuralTangentsException "gradient descent ODE: the outputs overflowed; use smaller times or a smaller learning rate")
                let factor = if err = 0.0 then 5.0 else min 5.0 (max 0.2 (0.9 * Math.Pow(err, -0.2)))
                if err <= 1.0 then
                    // Accept; first-same-as-last: k7 is the next step's k1.
                    tau <- (if hStep = target - tau then target else tau + hStep)
                    y <- yNew
                    k1 <- k7
                    // A step clipped to land on a requested time says little about the step size: keep h then.
                    h <- if hStep < h then max h (hStep * factor) else hStep * factor
                else
                    h <- hStep * factor
            out[idx] <- Array.copy y
        out
