using System.Text.Json;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Shared helpers: the relative Frobenius error rule, seeded inputs, and fixture loading.</summary>
internal static class TestUtil
{
    /// <summary>‖actual − expected‖_F / ‖expected‖_F (neural_tangents' <c>assert_close_matrices</c> rule);
    /// the absolute norm when the reference is zero.</summary>
    public static double RelErr(double[] expected, double[] actual)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), "length");
        double d = 0, n = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            d += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            n += expected[i] * expected[i];
        }

        return n == 0 ? Math.Sqrt(d) : Math.Sqrt(d / n);
    }

    public static double RelErr(double[,] expected, double[,] actual)
    {
        Assert.That(actual.GetLength(0), Is.EqualTo(expected.GetLength(0)), "rows");
        Assert.That(actual.GetLength(1), Is.EqualTo(expected.GetLength(1)), "columns");
        return RelErr(expected.Cast<double>().ToArray(), actual.Cast<double>().ToArray());
    }

    public static void AssertClose(string what, double tol, double[,] expected, double[,] actual)
    {
        var e = RelErr(expected, actual);
        TestContext.Out.WriteLine($"{what}: relative Frobenius error {e:E3} (tolerance {tol:E1})");
        Assert.That(e, Is.LessThanOrEqualTo(tol), $"{what}: relative Frobenius error {e:E3} exceeds {tol:E1}");
    }

    public static void AssertClose(string what, double tol, double[] expected, double[] actual)
    {
        var e = RelErr(expected, actual);
        TestContext.Out.WriteLine($"{what}: relative Frobenius error {e:E3} (tolerance {tol:E1})");
        Assert.That(e, Is.LessThanOrEqualTo(tol), $"{what}: relative Frobenius error {e:E3} exceeds {tol:E1}");
    }

    /// <summary>The folder holding NeuralTangents.slnx, found by walking up from the test assembly.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "NeuralTangents.slnx")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("cannot find NeuralTangents.slnx above " + AppContext.BaseDirectory);
    }

    /// <summary>The lines of the first <c>```lang</c> fenced block of a Markdown file, after the line
    /// <paramref name="heading"/> when one is given (e.g. <c>## C#</c>).</summary>
    public static string[] FencedBlock(string markdownPath, string? heading, string lang)
    {
        var lines = File.ReadAllLines(markdownPath);
        var from = heading is null ? 0 : Array.IndexOf(lines, heading);
        Assert.That(from, Is.GreaterThanOrEqualTo(0), $"a line '{heading}' in {markdownPath}");
        var open = Array.IndexOf(lines, "```" + lang, from);
        var close = open < 0 ? -1 : Array.IndexOf(lines, "```", open + 1);
        Assert.That(open >= 0 && close > open, Is.True, $"a ```{lang} block after '{heading}' in {markdownPath}");
        return lines[(open + 1)..close];
    }

    /// <summary>A reference fixture from tests/fixtures, parsed.</summary>
    public static JsonElement Fixture(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot, "tests", "fixtures", name + ".json"))).RootElement;

    public static double[] Vector(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    public static double[,] Matrix(JsonElement e)
    {
        var rows = e.EnumerateArray().Select(Vector).ToArray();
        var m = new double[rows.Length, rows.Length == 0 ? 0 : rows[0].Length];
        for (var i = 0; i < rows.Length; i++)
        {
            for (var j = 0; j < rows[i].Length; j++)
            {
                m[i, j] = rows[i][j];
            }
        }

        return m;
    }

    /// <summary>Seeded standard normals (Box–Muller over System.Random).</summary>
    public static double[] Normals(int seed, int n)
    {
        var rng = new Random(seed);
        var r = new double[n];
        for (var i = 0; i < n; i++)
        {
            var u1 = 1.0 - rng.NextDouble();
            var u2 = rng.NextDouble();
            r[i] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        }

        return r;
    }

    public static double[,] RandomMatrix(int seed, int rows, int cols)
    {
        var v = Normals(seed, rows * cols);
        var m = new double[rows, cols];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                m[i, j] = v[i * cols + j];
            }
        }

        return m;
    }

    public static double[,,,] RandomImages(int seed, int n, int h, int w, int c)
    {
        var v = Normals(seed, n * h * w * c);
        var x = new double[n, h, w, c];
        var k = 0;
        for (var i = 0; i < n; i++)
        {
            for (var a = 0; a < h; a++)
            {
                for (var b = 0; b < w; b++)
                {
                    for (var ch = 0; ch < c; ch++)
                    {
                        x[i, a, b, ch] = v[k++];
                    }
                }
            }
        }

        return x;
    }

    /// <summary>Row-major flattening of each NHWC image: (N, H·W·C).</summary>
    public static double[,] FlattenImages(double[,,,] x)
    {
        int n = x.GetLength(0), h = x.GetLength(1), w = x.GetLength(2), c = x.GetLength(3);
        var m = new double[n, h * w * c];
        for (var i = 0; i < n; i++)
        {
            var k = 0;
            for (var a = 0; a < h; a++)
            {
                for (var b = 0; b < w; b++)
                {
                    for (var ch = 0; ch < c; ch++)
                    {
                        m[i, k++] = x[i, a, b, ch];
                    }
                }
            }
        }

        return m;
    }
}
