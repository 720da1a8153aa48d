namespace NeuralTangents.CSharp;

/// <summary>Conversions of the array shapes .NET code holds (jagged rows, single precision, 1-D targets) to the
/// (N, features) <c>double[,]</c> matrices the façade computes on, with the checks that name the argument.</summary>
internal static class Inputs
{
    /// <summary>Jagged rows to a matrix; every row must be non-null and of the first row's length.</summary>
    public static double[,] Rows(double[][] rows, string paramName)
    {
        Boundary.NoNulls(rows, paramName);
        if (rows.Length == 0)
        {
            // Without a first row there are no features to speak of; say what is missing.
            throw new ArgumentException("inputs have no rows (batch size 0); give at least one input", paramName);
        }

        var n = rows.Length;
        var d = rows[0].Length;
        var m = new double[n, d];
        for (var i = 0; i < n; i++)
        {
            if (rows[i].Length != d)
            {
                throw new ArgumentException(
                    $"every row must have the first row's {d} features, but {paramName}[{i}] has {rows[i].Length}; " +
                    "pass rectangular data (one row per input)", paramName);
            }

            for (var j = 0; j < d; j++)
            {
                m[i, j] = rows[i][j];
            }
        }

        return m;
    }

    /// <summary>Single precision to double (exact: every float is a double).</summary>
    public static double[,] Widen(float[,] x, string paramName)
    {
        Boundary.NotNull(x, paramName);
        var m = new double[x.GetLength(0), x.GetLength(1)];
        for (var i = 0; i < x.GetLength(0); i++)
        {
            for (var j = 0; j < x.GetLength(1); j++)
            {
                m[i, j] = x[i, j];
            }
        }

        return m;
    }

    /// <summary>1-D targets (one output per input) to an (N, 1) matrix.</summary>
    public static double[,] Column(double[] y, string paramName)
    {
        Boundary.NotNull(y, paramName);
        var m = new double[y.Length, 1];
        for (var i = 0; i < y.Length; i++)
        {
            m[i, 0] = y[i];
        }

        return m;
    }
}
