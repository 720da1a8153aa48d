using CoreDual = NeuralTangents.Dual;

namespace NeuralTangents.CSharp;

/// <summary>
/// A dual number <c>Value + Derivative·ε</c> with ε² = 0, for writing a custom activation once and getting its
/// exact derivative (forward-mode automatic differentiation): evaluate φ at <see cref="Variable(double)"/> x and
/// the result holds φ(x) in <see cref="Value"/> and φ′(x) in <see cref="Derivative"/>, each operation applying the
/// chain rule, so φ′ carries only round-off, never a finite-difference step error.
/// </summary>
/// <remarks>
/// Write φ with the operators (a <see cref="double"/> converts implicitly to a constant) and the static functions,
/// e.g. <c>x => x * DualNumber.Tanh(DualNumber.Log1p(DualNumber.Exp(x)))</c> (mish). Where a function has a kink
/// (<see cref="Abs"/>, <see cref="Max"/>, <see cref="Min"/>) the derivative at the kink is the average of the
/// one-sided ones, as JAX's gradients of <c>maximum</c>/<c>minimum</c> give. The arithmetic is the F# core's
/// dual numbers', so a C# activation computes exactly what the same F# one does.
/// </remarks>
public readonly struct DualNumber : IEquatable<DualNumber>
{
    /// <summary>Creates <c>value + derivative·ε</c>.</summary>
    /// <param name="value">The value f(x).</param>
    /// <param name="derivative">The derivative f′(x).</param>
    public DualNumber(double value, double derivative)
    {
        Value = value;
        Derivative = derivative;
    }

    /// <summary>The value f(x).</summary>
    public double Value { get; }

    /// <summary>The derivative f′(x) (the coefficient of ε).</summary>
    public double Derivative { get; }

    /// <summary>A constant: derivative 0.</summary>
    /// <param name="value">The constant.</param>
    /// <returns><c>value + 0·ε</c>.</returns>
    public static DualNumber Constant(double value) => new(value, 0.0);

    /// <summary>The variable x itself: derivative 1.</summary>
    /// <param name="value">x.</param>
    /// <returns><c>x + 1·ε</c>.</returns>
    public static DualNumber Variable(double value) => new(value, 1.0);

    /// <summary>A constant (derivative 0), so that <c>2.0 * x</c> and <c>x + 1</c> read as in plain arithmetic.</summary>
    /// <param name="value">The constant.</param>
    public static implicit operator DualNumber(double value) => new(value, 0.0);

    /// <summary>Sum: (a + b)′ = a′ + b′.</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator +(DualNumber a, DualNumber b) => Of(a.ToCore() + b.ToCore());

    /// <summary>Difference: (a − b)′ = a′ − b′.</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator -(DualNumber a, DualNumber b) => Of(a.ToCore() - b.ToCore());

    /// <summary>Negation.</summary>
    /// <param name="a">The operand.</param>
    public static DualNumber operator -(DualNumber a) => new(-a.Value, -a.Derivative);

    /// <summary>Product: (a·b)′ = a′·b + a·b′.</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator *(DualNumber a, DualNumber b) => Of(a.ToCore() * b.ToCore());

    /// <summary>Quotient: (a/b)′ = (a′ − (a/b)·b′)/b.</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator /(DualNumber a, DualNumber b) => Of(a.ToCore() / b.ToCore());

    /// <summary>Sum with a constant on the right (a + b).</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand, a constant.</param>
    public static DualNumber operator +(DualNumber a, double b) => Of(a.ToCore() + b);

    /// <summary>Sum with a constant on the left (a + b).</summary>
    /// <param name="a">Left operand, a constant.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator +(double a, DualNumber b) => Of(a + b.ToCore());

    /// <summary>Difference with a constant on the right (a − b).</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand, a constant.</param>
    public static DualNumber operator -(DualNumber a, double b) => Of(a.ToCore() - b);

    /// <summary>Difference with a constant on the left (a − b).</summary>
    /// <param name="a">Left operand, a constant.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator -(double a, DualNumber b) => Of(a - b.ToCore());

    /// <summary>Product with a constant on the right (a·b).</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand, a constant.</param>
    public static DualNumber operator *(DualNumber a, double b) => Of(a.ToCore() * b);

    /// <summary>Product with a constant on the left (a·b).</summary>
    /// <param name="a">Left operand, a constant.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator *(double a, DualNumber b) => Of(a * b.ToCore());

    /// <summary>Quotient with a constant on the right (a/b).</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand, a constant.</param>
    public static DualNumber operator /(DualNumber a, double b) => Of(a.ToCore() / b);

    /// <summary>Quotient with a constant on the left (a/b).</summary>
    /// <param name="a">Left operand, a constant.</param>
    /// <param name="b">Right operand.</param>
    public static DualNumber operator /(double a, DualNumber b) => Of(a / b.ToCore());

    /// <summary>Whether both parts are equal.</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand.</param>
    public static bool operator ==(DualNumber a, DualNumber b) => a.Equals(b);

    /// <summary>Whether a part differs.</summary>
    /// <param name="a">Left operand.</param>
    /// <param name="b">Right operand.</param>
    public static bool operator !=(DualNumber a, DualNumber b) => !a.Equals(b);

    /// <summary>eˣ.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>eˣ with derivative eˣ·x′.</returns>
    public static DualNumber Exp(DualNumber x) => Of(CoreDual.Exp(x.ToCore()));

    /// <summary>eˣ − 1, accurate near 0.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>eˣ − 1 with derivative eˣ·x′.</returns>
    public static DualNumber Expm1(DualNumber x) => Of(CoreDual.Expm1(x.ToCore()));

    /// <summary>ln x.</summary>
    /// <param name="x">The argument (positive).</param>
    /// <returns>ln x with derivative x′/x.</returns>
    public static DualNumber Log(DualNumber x) => Of(CoreDual.Log(x.ToCore()));

    /// <summary>ln(1 + x), accurate near 0.</summary>
    /// <param name="x">The argument (above −1).</param>
    /// <returns>ln(1 + x) with derivative x′/(1 + x).</returns>
    public static DualNumber Log1p(DualNumber x) => Of(CoreDual.Log1p(x.ToCore()));

    /// <summary>√x.</summary>
    /// <param name="x">The argument (non-negative).</param>
    /// <returns>√x with derivative x′/(2√x).</returns>
    public static DualNumber Sqrt(DualNumber x) => Of(CoreDual.Sqrt(x.ToCore()));

    /// <summary>sin x.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>sin x with derivative cos x·x′.</returns>
    public static DualNumber Sin(DualNumber x) => Of(CoreDual.Sin(x.ToCore()));

    /// <summary>cos x.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>cos x with derivative −sin x·x′.</returns>
    public static DualNumber Cos(DualNumber x) => Of(CoreDual.Cos(x.ToCore()));

    /// <summary>tanh x.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>tanh x with derivative sech²x·x′.</returns>
    public static DualNumber Tanh(DualNumber x) => Of(CoreDual.Tanh(x.ToCore()));

    /// <summary>arctan x.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>arctan x with derivative x′/(1 + x²).</returns>
    public static DualNumber Atan(DualNumber x) => Of(CoreDual.Atan(x.ToCore()));

    /// <summary>arcsin x.</summary>
    /// <param name="x">The argument, in [−1, 1].</param>
    /// <returns>arcsin x with derivative x′/√(1 − x²).</returns>
    public static DualNumber Asin(DualNumber x) => Of(CoreDual.Asin(x.ToCore()));

    /// <summary>arccos x.</summary>
    /// <param name="x">The argument, in [−1, 1].</param>
    /// <returns>arccos x with derivative −x′/√(1 − x²).</returns>
    public static DualNumber Acos(DualNumber x) => Of(CoreDual.Acos(x.ToCore()));

    /// <summary>atan2(y, x), the angle of (x, y).</summary>
    /// <param name="y">Ordinate.</param>
    /// <param name="x">Abscissa.</param>
    /// <returns>atan2(y, x) with derivative (x·y′ − y·x′)/(x² + y²) (0 at the origin).</returns>
    public static DualNumber Atan2(DualNumber y, DualNumber x) => Of(CoreDual.Atan2(y.ToCore(), x.ToCore()));

    /// <summary>The error function erf x.</summary>
    /// <param name="x">The argument.</param>
    /// <returns>erf x with derivative (2/√π)·e^(−x²)·x′.</returns>
    public static DualNumber Erf(DualNumber x) => Of(CoreDual.Erf(x.ToCore()));

    /// <summary>xᵖ for a constant exponent.</summary>
    /// <param name="x">The base.</param>
    /// <param name="p">The exponent.</param>
    /// <returns>xᵖ with derivative p·xᵖ⁻¹·x′.</returns>
    public static DualNumber Pow(DualNumber x, double p) => Of(CoreDual.Pow(x.ToCore(), p));

    /// <summary>|x|; derivative 0 at 0 (the average of −1 and 1).</summary>
    /// <param name="x">The argument.</param>
    /// <returns>|x|.</returns>
    public static DualNumber Abs(DualNumber x) => Of(CoreDual.Abs(x.ToCore()));

    /// <summary>max(x, c) for a constant c; at x = c the derivative is half of x′.</summary>
    /// <param name="x">The argument.</param>
    /// <param name="c">The constant.</param>
    /// <returns>max(x, c).</returns>
    public static DualNumber Max(DualNumber x, double c) => Of(CoreDual.Max(x.ToCore(), c));

    /// <summary>min(x, c) for a constant c; at x = c the derivative is half of x′.</summary>
    /// <param name="x">The argument.</param>
    /// <param name="c">The constant.</param>
    /// <returns>min(x, c).</returns>
    public static DualNumber Min(DualNumber x, double c) => Of(CoreDual.Min(x.ToCore(), c));

    /// <summary>Whether both parts are equal (as <see cref="double.Equals(double)"/>: NaN equals NaN).</summary>
    /// <param name="other">The other number.</param>
    /// <returns>True when value and derivative are equal.</returns>
    public bool Equals(DualNumber other) => Value.Equals(other.Value) && Derivative.Equals(other.Derivative);

    /// <summary>Whether <paramref name="obj"/> is an equal <see cref="DualNumber"/>.</summary>
    /// <param name="obj">The object.</param>
    /// <returns>True when equal.</returns>
    public override bool Equals(object? obj) => obj is DualNumber d && Equals(d);

    /// <summary>A hash of both parts.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode() => HashCode.Combine(Value, Derivative);

    /// <summary>The number as <c>v + dε</c>.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => FormattableString.Invariant($"{Value:G17} + {Derivative:G17}ε");

    internal static DualNumber Of(CoreDual d) => new(d.Value, d.Derivative);

    internal CoreDual ToCore() => new(Value, Derivative);
}
