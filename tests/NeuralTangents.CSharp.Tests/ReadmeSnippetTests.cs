using System.Reflection;
using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The README's C# snippet (examples/csharp/QuickStart.cs, compiled as this assembly's entry point) runs and
/// prints the right kernel, and is exactly the README's C# block.</summary>
[TestFixture]
public class ReadmeSnippetTests
{
    /// <summary>Runs the quick start (the top-level statements of examples/csharp/QuickStart.cs) and returns what it
    /// prints.</summary>
    internal static string RunQuickStart()
    {
        var entry = typeof(ReadmeSnippetTests).Assembly.EntryPoint;
        Assert.That(entry?.DeclaringType?.Name, Is.EqualTo("Program"), "the entry point is QuickStart.cs' top-level code");
        var saved = Console.Out;
        using var printed = new StringWriter { NewLine = "\n" };
        Console.SetOut(printed);
        try
        {
            entry!.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
        finally
        {
            Console.SetOut(saved);
        }

        return printed.ToString();
    }

    [Test]
    public void ReadmeSnippet_Runs()
    {
        var printed = RunQuickStart().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        TestContext.Out.WriteLine(string.Join("\n", printed));

        // Independent closed form for Dense(W_std=1.5, b_std=0.05) → Relu → Dense(W_std=1.5, b_std=0.05), "ntk"
        // parameterization, on x = [(1, 0), (0.6, 0.8)]:
        //   input kernel q_ij = x_i·x_j / 2; Dense: q' = 2.25·q + 0.0025, NTK' = q' (the input NTK is 0);
        //   Relu, arc-cosine kernel of degree 1 (Cho & Saul 2009; arXiv:1711.00165 eq. for ReLU):
        //     E[relu(u)relu(v)] = √(q_ii q_jj)/(2π)·(sin θ + (π − θ) cos θ),  E[relu'(u)relu'(v)] = (π − θ)/(2π),
        //     with cos θ = q_ij / √(q_ii q_jj);
        //   Dense: nngp = 2.25·E + 0.0025, ntk = nngp + 2.25·NTK'·(π − θ)/(2π).
        double[,] x = { { 1.0, 0.0 }, { 0.6, 0.8 } };
        var nngp = new double[2, 2];
        var ntk = new double[2, 2];
        double Q(int i, int j) => 2.25 * (x[i, 0] * x[j, 0] + x[i, 1] * x[j, 1]) / 2.0 + 0.0025;
        for (var i = 0; i < 2; i++)
        {
            for (var j = 0; j < 2; j++)
            {
                var norm = Math.Sqrt(Q(i, i) * Q(j, j));
                var theta = Math.Acos(Math.Clamp(Q(i, j) / norm, -1.0, 1.0));
                var e = norm / (2 * Math.PI) * (Math.Sin(theta) + (Math.PI - theta) * Math.Cos(theta));
                nngp[i, j] = 2.25 * e + 0.0025;
                ntk[i, j] = nngp[i, j] + 2.25 * Q(i, j) * (Math.PI - theta) / (2 * Math.PI);
            }
        }

        // What the snippet prints: the off-diagonal kernels to 6 decimals, then the network as JSON.
        var net = new NetworkBuilder()
            .Dense(512, wStd: 1.5, bStd: 0.05).Relu()
            .Dense(1, wStd: 1.5, bStd: 0.05)
            .Build();
        Assert.That(printed, Has.Length.EqualTo(2), "the snippet prints two lines");
        Assert.That(printed[0], Is.EqualTo($"NNGP {nngp[0, 1]:F6}  NTK {ntk[0, 1]:F6}"));
        Assert.That(printed[1], Is.EqualTo(net.ToJson()));

        // The snippet's network, to full precision. Off the diagonal θ ≈ 0.93 is well conditioned: only round-off
        // (~1e-16 per step) separates the two paths.
        var k = net.Kernel(x);
        Assert.That(Math.Abs(k.Nngp[0, 1] - nngp[0, 1]) / nngp[0, 1], Is.LessThan(1e-12), "nngp[0, 1]");
        Assert.That(Math.Abs(k.Ntk![0, 1] - ntk[0, 1]) / ntk[0, 1], Is.LessThan(1e-12), "ntk[0, 1]");
        // On the diagonal cos θ = 1, where acos turns a 1e-16 rounding of cos θ into θ ~ 1.5e-8 and (π − θ)/(2π)
        // moves by ~2.4e-9 relative: hence the fixtures' 1e-8 rule for the whole matrices.
        AssertClose("nngp", 1e-8, nngp, k.Nngp);
        AssertClose("ntk", 1e-8, ntk, k.Ntk);
        Assert.That(k.Cov2, Is.Null);
    }

    [Test]
    public void ReadmeSnippet_MatchesThisReadme()
    {
        var source = File.ReadAllLines(Path.Combine(RepoRoot, "examples", "csharp", "QuickStart.cs"));
        var start = Array.FindIndex(source, l => l.Trim() == "// <snippet>");
        var end = Array.FindIndex(source, l => l.Trim() == "// </snippet>");
        Assert.That(start, Is.GreaterThanOrEqualTo(0).And.LessThan(end), "snippet markers in QuickStart.cs");
        var body = source[(start + 1)..end];
        var indent = body.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        var snippet = body.Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()).ToArray();

        Assert.That(FencedBlock(Path.Combine(RepoRoot, "examples", "csharp", "README.md"), null, "csharp"), Is.EqualTo(snippet),
            "examples/csharp/README.md");
        Assert.That(FencedBlock(Path.Combine(RepoRoot, "README.md"), "## C#", "csharp"), Is.EqualTo(snippet), "README.md, ## C#");
    }
}
