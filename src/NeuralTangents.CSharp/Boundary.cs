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
    /// name that <paramref name="rename"/> gives for the core's name, keeping the core's message.</summary>
    public static T Call<T>(Func<T> call, Func<string?, string?> rename)
    {
        try
        {
            return call();
        }
        catch (ArgumentException e) when (e is not ArgumentNullException)
        {
            var name = rename(e.ParamName);
            throw new ArgumentException(MessageWithoutName(e), name, e);
        }
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

    // ArgumentException.Message appends " (Parameter 'name')"; strip it so the new exception does not repeat it.
    private static string MessageWithoutName(ArgumentException e)
    {
        if (e.ParamName is null)
        {
            return e.Message;
        }

        var suffix = new ArgumentException(string.Empty, e.ParamName).Message;
        return e.Message.EndsWith(suffix, StringComparison.Ordinal) ? e.Message[..^suffix.Length] : e.Message;
    }
}
