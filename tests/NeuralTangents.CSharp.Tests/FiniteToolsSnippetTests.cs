using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The README's "Finite widths from C#" block (examples/csharp/FiniteTools.cs) is that file's code, runs,
/// and prints consistent numbers.</summary>
[TestFixture]
public class FiniteToolsSnippetTests
{
    [Test]
    public void Snippet_MatchesTheReadme()
    {
        var source = File.ReadAllLines(Path.Combine(RepoRoot, "examples", "csharp", "FiniteTools.cs"));
        var start = Array.FindIndex(source, l => l.Trim() == "// <snippet>");
        var end = Array.FindIndex(source, l => l.Trim() == "// </snippet>");
        Assert.That(start, Is.GreaterThanOrEqualTo(0).And.LessThan(end), "snippet markers in FiniteTools.cs");
        var body = source[(start + 1)..end];
        var indent = body.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        var snippet = body.Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()).ToArray();
        // The README's block starts with the file's using directive (it runs on its own), then the snippet.
        var expected = new[] { "using NeuralTangents.CSharp;", string.Empty }.Concat(snippet).ToArray();
        Assert.That(FencedBlock(Path.Combine(RepoRoot, "README.md"), "### Finite widths from C#", "csharp"), Is.EqualTo(expected));
    }

    [Test]
    public void Snippet_Runs()
    {
        var saved = Console.Out;
        using var printed = new StringWriter { NewLine = "\n" };
        Console.SetOut(printed);
        try
        {
            CSharpExamples.FiniteToolsExample.Run();
        }
        finally
        {
            Console.SetOut(saved);
        }

        var lines = printed.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        TestContext.Out.WriteLine(string.Join("\n", lines));
        Assert.That(lines.Length, Is.EqualTo(3));
        double[] Numbers(string line) => Regex.Matches(line, @"-?\d+\.\d+").Select(m => double.Parse(m.Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.That(Numbers(lines[0]).Concat(Numbers(lines[1])), Has.All.Matches<double>(double.IsFinite));
        // a network linear in the last layer and smooth elsewhere moved by 0.1 % of θ: first-order agreement,
        // |f − f_lin| = O(|Δθ|²) ~ 1e-6·|f| (a wrong slope would be off by ~1e-3·|f|); six printed decimals must agree to a few units of the last place
        var lin = Numbers(lines[2]);
        Assert.That(lin[^2], Is.EqualTo(lin[^1]).Within(1e-5 * Math.Abs(lin[^1]) + 2e-6));
    }
}
