using System.Text.RegularExpressions;

namespace NeuralTangents.CSharp;

/// <summary>The checks and error translation done where C# calls into the F# core: null checks, and argument
/// errors of the core (which name neural_tangents' arguments, e.g. <c>W_std</c>) renamed to the C# parameter.</summary>
internal static class Boundary
{
    /// <summary>Throws <see cref="ArgumentNullException"/> when <paramref name="value"/> is null.</summary>
    public static T NotNull<T>(T? value, string paramName)
        where T : class =>
        value ?? throw new ArgumentNullException(paramName);

    /// <summary>Throws <see cref="ArgumentNullException"/> when the array or one of its items is null.</summary>
    public static T[] NoNulls<T>(T[]? items, string paramName)
        where T : class
    {
        NotNull(items, paramName);
        for (var i = 0; i < items!.Length; i++)
        {
            if (items[i] is null)
            {
                throw new ArgumentNullException(paramName, $"{paramName}[{i}] is null.");
            }
        }

        return items;
    }

    /// <summary>Runs a core call; an <see cref="ArgumentException"/> it raises is raised again with the parameter
    /// name that <paramref name="rename"/> gives for the core's name, an <see cref="ArgumentException"/> with its message
    /// in C# wording (<see cref="CSharpWording"/>), and the core's <see cref="NeuralTangentsException"/> as an
    /// <see cref="InvalidOperationException"/> with that wording.</summary>
    public static T Call<T>(Func<T> call, Func<string?, string?> rename)
    {
        try
        {
            return call();
        }
        catch (ArgumentException e) when (e is not ArgumentNullException)
        {
            var name = rename(e.ParamName);
            throw new ArgumentException(CSharpWording(MessageWithoutName(e)), name, e);
        }
        catch (NeuralTangentsException e)
        {
            // The core's own exception is an F# exception type; C# callers get the BCL's exception for "this object
            // cannot do that with these inputs", with the core's message in C# wording (the core's as InnerException).
            throw new InvalidOperationException(CSharpWording(e.Message), e);
        }
    }

    /// <summary>A core message in C# terms: <c>null</c> for F#'s <c>None</c>, arrays as <c>[1, 2]</c> rather than
    /// F#'s <c>[|1; 2|]</c>, and the façade's camelCase names for neural_tangents' snake_case arguments.</summary>
    public static string CSharpWording(string message)
    {
        var m = message
            .Replace("(pass None for infinite time)", "(double.PositiveInfinity for t = ∞)", StringComparison.Ordinal)
            .Replace("\"memory_gb\"", "memory budget (TilingOptions.WithMemoryGb)", StringComparison.Ordinal)
            .Replace("diag_reg_absolute_scale", "diagRegAbsoluteScale", StringComparison.Ordinal)
            .Replace("diag_reg", "diagReg", StringComparison.Ordinal)
            .Replace("learning_rate", "learningRate", StringComparison.Ordinal)
            .Replace("batch_size", "batchSize", StringComparison.Ordinal)
            .Replace("n_samples", "nSamples", StringComparison.Ordinal)
            .Replace("trace_axes", "traceAxes", StringComparison.Ordinal)
            .Replace("diagonal_axes", "diagonalAxes", StringComparison.Ordinal);
        m = Regex.Replace(m, @"\[\|(.*?)\|\]", a => "[" + a.Groups[1].Value.Replace("; ", ", ", StringComparison.Ordinal) + "]");
        // F# int lists ("[0; 3]") as C# writes them ("[0, 3]").
        m = Regex.Replace(m, @"\[(-?\d+(?:; -?\d+)*)\]", a => "[" + a.Groups[1].Value.Replace("; ", ", ", StringComparison.Ordinal) + "]");
        m = Regex.Replace(m, @"\bNone\b", "null");
        m = Regex.Replace(m, @"\bSome\b ?", string.Empty);
        return m;
    }

    /// <summary>Checks training times: each ≥ 0, <see cref="double.PositiveInfinity"/> meaning t = ∞.</summary>
    /// <returns>A copy of the times.</returns>
    public static double[] Times(double[] times, string paramName)
    {
        for (var i = 0; i < times.Length; i++)
        {
            if (double.IsNaN(times[i]) || times[i] < 0.0)
            {
                throw new ArgumentException(
                    $"{paramName}[{i}] must be ≥ 0 (double.PositiveInfinity for t = ∞), got {times[i]}", paramName);
            }
        }

        return (double[])times.Clone();
    }

    /// <summary>A renaming table from the core's argument names to C# parameter names; other names are kept.</summary>
    public static Func<string?, string?> Names(params (string Core, string CSharp)[] pairs) =>
        name =>
        {
            foreach (var (core, cs) in pairs)
            {
                if (name == core)
                {
                    return cs;
                }
            }

            return name;
        };

    /// <summary>The message of <paramref name="e"/> without the " (Parameter 'name')" that
    /// <see cref="ArgumentException.Message"/> appends, so that a new exception built from it does not repeat it.</summary>
    public static string MessageWithoutName(ArgumentException e)
    {
        if (e.ParamName is null)
        {
            return e.Message;
        }

        var suffix = new ArgumentException(string.Empty, e.ParamName).Message;
        return e.Message.EndsWith(suffix, StringComparison.Ordinal) ? e.Message[..^suffix.Length] : e.Message;
    }
}
