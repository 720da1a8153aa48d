namespace NeuralTangents

open System

/// <summary>A dual number v + d·ε with ε² = 0: forward-mode automatic differentiation of a scalar function
/// written once over <c>Dual</c>. Evaluating f at <c>Dual(x, 1)</c> gives f(x) in <c>Value</c> and f′(x) in
/// <c>Derivative</c> by the chain rule applied to each elementary operation, so the derivative carries only the
/// round-off of those operations (a few ulp each), never a step-size error as a finite difference would.</summary>
/// <remarks>F#'s <c>sin</c>, <c>exp</c>, <c>sqrt</c>, <c>tanh</c>, <c>atan2</c>, <c>abs</c>, <c>**</c> … work
/// on it; C# uses the operators and the static methods (<c>Dual.Exp(x)</c>). Where a function has a kink
/// (<c>Max</c>, <c>Min</c>, <c>Abs</c>) the derivative at the kink is the average of the one-sided ones, as JAX's
/// gradients of <c>maximum</c>/<c>minimum</c> give.</remarks>
[<Struct; CustomEquality; NoComparison>]
type Dual =
    /// <summary>The value f(x).</summary>
    val Value: float
    /// <summary>The derivative f′(x) (the coefficient of ε).</summary>
    val Derivative: float
    /// <summary>v + d·ε.</summary>
    new(value: float, derivative: float) = { Value = value; Derivative = derivative }

    /// <summary>A constant (derivative 0).</summary>
    static member Constant(v: float) = Dual(v, 0.0)
    /// <summary>The variable x itself (derivative 1).</summary>
    static member Variable(v: float) = Dual(v, 1.0)

    static member (+)(a: Dual, b: Dual) = Dual(a.Value + b.Value, a.Derivative + b.Derivative)
    static member (+)(a: Dual, b: float) = Dual(a.Value + b, a.Derivative)
    static member (+)(a: float, b: Dual) = Dual(a + b.Value, b.Derivative)
    static member (-)(a: Dual, b: Dual) = Dual(a.Value - b.Value, a.Derivative - b.Derivative)
    static member (-)(a: Dual, b: float) = Dual(a.Value - b, a.Derivative)
    static member (-)(a: float, b: Dual) = Dual(a - b.Value, -b.Derivative)
    static member (~-)(a: Dual) = Dual(-a.Value, -a.Derivative)
    static member (*)(a: Dual, b: Dual) = Dual(a.Value * b.Value, a.Derivative * b.Value + a.Value * b.Derivative)
    static member (*)(a: Dual, b: float) = Dual(a.Value * b, a.Derivative * b)
    static member (*)(a: float, b: Dual) = Dual(a * b.Value, a * b.Derivative)
    static member (/)(a: Dual, b: Dual) =
        let q = a.Value / b.Value
        Dual(q, (a.Derivative - q * b.Derivative) / b.Value)
    static member (/)(a: Dual, b: float) = Dual(a.Value / b, a.Derivative / b)
    static member (/)(a: float, b: Dual) =
        let q = a / b.Value
        Dual(q, -q * b.Derivative / b.Value)

    /// <summary>eˣ.</summary>
    static member Exp(a: Dual) = let e = Math.Exp a.Value in Dual(e, e * a.Derivative)
    /// <summary>eˣ − 1, accurate near 0.</summary>
    static member Expm1(a: Dual) =
        let v = if abs a.Value < 1e-5 then a.Value + a.Value * a.Value / 2.0 + a.Value * a.Value * a.Value / 6.0 else Math.Exp a.Value - 1.0
        Dual(v, Math.Exp a.Value * a.Derivative)
    /// <summary>ln x.</summary>
    static member Log(a: Dual) = Dual(Math.Log a.Value, a.Derivative / a.Value)
    /// <summary>ln(1 + x), accurate near 0.</summary>
    static member Log1p(a: Dual) =
        // log1p via the compensated form log(u)·x/(u − 1), u = 1 + x (Goldberg 1991, Theorem 4).
        let x = a.Value
        let u = 1.0 + x
        let v = if u = 1.0 then x else Math.Log u * x / (u - 1.0)
        Dual(v, a.Derivative / (1.0 + x))
    /// <summary>√x (derivative 1/(2√x)).</summary>
    static member Sqrt(a: Dual) = let s = Math.Sqrt a.Value in Dual(s, a.Derivative / (2.0 * s))
    static member Sin(a: Dual) = Dual(Math.Sin a.Value, Math.Cos a.Value * a.Derivative)
    static member Cos(a: Dual) = Dual(Math.Cos a.Value, -Math.Sin a.Value * a.Derivative)
    /// <summary>tanh x, derivative sech²x (as 1 − tanh² only where that does not cancel, |x| &lt; 0.5).</summary>
    static member Tanh(a: Dual) =
        let t = Math.Tanh a.Value
        let d = if abs a.Value < 0.5 then 1.0 - t * t else let ch = Math.Cosh a.Value in 1.0 / (ch * ch)
        Dual(t, d * a.Derivative)
    static member Atan(a: Dual) = Dual(Math.Atan a.Value, a.Derivative / (1.0 + a.Value * a.Value))
    static member Asin(a: Dual) = Dual(Math.Asin a.Value, a.Derivative / Math.Sqrt(1.0 - a.Value * a.Value))
    static member Acos(a: Dual) = Dual(Math.Acos a.Value, -a.Derivative / Math.Sqrt(1.0 - a.Value * a.Value))
    /// <summary>atan2(y, x), derivative (x·dy − y·dx)/(x² + y²).</summary>
    static member Atan2(y: Dual, x: Dual) =
        let r2 = x.Value * x.Value + y.Value * y.Value
        Dual(Math.Atan2(y.Value, x.Value), if r2 = 0.0 then 0.0 else (x.Value * y.Derivative - y.Value * x.Derivative) / r2)
    /// <summary>erf x, derivative (2/√π)·e^{−x²}.</summary>
    static member Erf(a: Dual) =
        Dual(MathNet.Numerics.SpecialFunctions.Erf a.Value, 2.0 / Math.Sqrt Math.PI * Math.Exp(-a.Value * a.Value) * a.Derivative)
    /// <summary>xᵖ for a constant p.</summary>
    static member Pow(a: Dual, p: float) =
        let v = Math.Pow(a.Value, p)
        Dual(v, (if p = 0.0 then 0.0 else p * Math.Pow(a.Value, p - 1.0)) * a.Derivative)
    /// <summary>|x|; derivative 0 at 0 (the average of −1 and 1).</summary>
    static member Abs(a: Dual) = Dual(abs a.Value, float (sign a.Value) * a.Derivative)
    /// <summary>max(x, c) for a constant c.</summary>
    static member Max(a: Dual, c: float) =
        if a.Value > c then a elif a.Value < c then Dual(c, 0.0) else Dual(c, 0.5 * a.Derivative)
    /// <summary>min(x, c) for a constant c.</summary>
    static member Min(a: Dual, c: float) =
        if a.Value < c then a elif a.Value > c then Dual(c, 0.0) else Dual(c, 0.5 * a.Derivative)

    override d.Equals(o: obj) =
        match o with
        | :? Dual as e -> d.Value.Equals e.Value && d.Derivative.Equals e.Derivative
        | _ -> false
    override d.GetHashCode() = HashCode.Combine(d.Value, d.Derivative)
    override d.ToString() = $"{Show.g d.Value} + {Show.g d.Derivative}ε"
