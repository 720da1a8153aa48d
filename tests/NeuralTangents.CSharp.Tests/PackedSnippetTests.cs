using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The README's C# and F# blocks, pasted verbatim by a new user outside the repository, build and run
/// against the packed NuGet packages: NeuralTangents.Core and NeuralTangents.CSharp are packed (Release) with a
/// version no other run uses, so NuGet's global cache cannot serve a stale copy; the C# block becomes the Program.cs of
/// a new console project (<c>dotnet new console</c>, <c>dotnet add package</c>, <c>dotnet run</c>), and the F# block
/// follows a <c>#r "nuget: …"</c> line in a new script run by <c>dotnet fsi</c>. Everything happens in a temporary
/// folder outside the repository whose own empty Directory.Build.props/.targets and Directory.Packages.props keep
/// anything else from leaking in, and whose nuget.config adds the packed packages' folder to the machine's own
/// package sources (it has no &lt;clear/&gt;, so the user-level sources still apply). Takes 1–3 minutes.</summary>
[TestFixture]
[NonParallelizable]
public class PackedSnippetTests
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromMinutes(6);

    private string _dotnet = "";
    private string _root = "";
    private string _feed = "";
    private string _version = "";
    private string _sources = "";

    [OneTimeSetUp]
    public void PackLibraries()
    {
        _dotnet = FindDotnet();
        _version = $"0.0.0-snippet.{DateTime.UtcNow:yyyyMMddHHmmss}.g{Guid.NewGuid():N}";
        _root = Path.Combine(Path.GetTempPath(), "nt-packed-snippet-" + Guid.NewGuid().ToString("N"));
        Assert.That(IsUnder(_root, RepoRoot), Is.False, $"the temporary folder {_root} must be outside the repository {RepoRoot}");
        _feed = Path.Combine(_root, "packages");
        Directory.CreateDirectory(_feed);

        // Stop MSBuild's and NuGet's upward searches here: nothing of /tmp's parents (or of the repository) applies.
        File.WriteAllText(Path.Combine(_root, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(_root, "Directory.Build.targets"), "<Project />\n");
        File.WriteAllText(Path.Combine(_root, "Directory.Packages.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(_root, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <!-- No <clear />: the machine's own sources (user-level NuGet.Config) still apply. -->
                <add key="packed-snippet" value="{System.Security.SecurityElement.Escape(_feed)}" />
              </packageSources>
            </configuration>
            """);
        _sources = Run("sources", _root, "nuget", "list", "source").Stdout;
        TestContext.Progress.WriteLine($"PackedSnippetTests: version {_version}, folder {_root}\n{_sources}");

        var artifacts = Path.Combine(_root, "artifacts"); // the repository's own bin/ and obj/ stay untouched
        foreach (var project in new[] { "NeuralTangents.Core/NeuralTangents.Core.fsproj", "NeuralTangents.CSharp/NeuralTangents.CSharp.csproj" })
        {
            var r = Run("pack " + project, RepoRoot, "pack", Path.Combine(RepoRoot, "src", project), "-c", "Release",
                        "-p:Version=" + _version, "-o", _feed, "--artifacts-path", artifacts, "-nodeReuse:false");
            r.AssertSucceeded();
        }

        foreach (var id in new[] { "NeuralTangents.Core", "NeuralTangents.CSharp" })
        {
            var package = Path.Combine(_feed, $"{id}.{_version}.nupkg");
            Assert.That(File.Exists(package), Is.True, $"{package} was not written; the folder has: "
                + string.Join(", ", Directory.GetFiles(_feed).Select(Path.GetFileName)));
        }
    }

    [OneTimeTearDown]
    public void CleanUp()
    {
        if (_root.Length > 0)
        {
            DeleteDirectory(_root);
        }

        // The unique version's copies in NuGet's global packages folder would only pile up.
        if (_version.Length > 0 && _dotnet.Length > 0)
        {
            try
            {
                var listed = Run("global-packages", Path.GetTempPath(), "nuget", "locals", "global-packages", "--list").Stdout;
                var m = Regex.Match(listed, @"global-packages:\s*(.+)");
                if (m.Success)
                {
                    foreach (var id in new[] { "neuraltangents.core", "neuraltangents.csharp" })
                    {
                        var idFolder = Path.Combine(m.Groups[1].Value.Trim(), id);
                        DeleteDirectory(Path.Combine(idFolder, _version.ToLowerInvariant()));
                        if (Directory.Exists(idFolder) && !Directory.EnumerateFileSystemEntries(idFolder).Any())
                        {
                            Directory.Delete(idFolder);
                        }
                    }
                }
            }
            catch (Exception e)
            {
                TestContext.Progress.WriteLine($"PackedSnippetTests: could not clean the global packages folder: {e.Message}");
            }
        }
    }

    [Test]
    public void PackedSnippet_CSharpReadmeBlock_RunsAsProgramCs_OfANewConsoleProject()
    {
        var code = string.Join("\n", FencedBlock(Path.Combine(RepoRoot, "README.md"), "## C#", "csharp")) + "\n";
        var app = Path.Combine(_root, "csharp", "SnippetApp");
        Directory.CreateDirectory(app);

        Run("new console", app, "new", "console", "--name", "SnippetApp", "--output", app, "--no-restore").AssertSucceeded();
        Run("add package", app, "add", "package", "NeuralTangents.CSharp", "--version", _version).AssertSucceeded(_sources);
        File.WriteAllText(Path.Combine(app, "Program.cs"), code);
        var run = Run("run", app, "run");
        run.AssertSucceeded(_sources + "\nProgram.cs:\n" + code);

        var line = Regex.Match(run.Stdout, @"^NNGP (-?\d+[.,]\d{6})  NTK (-?\d+[.,]\d{6})\r?$", RegexOptions.Multiline);
        Assert.That(line.Success, Is.True, "an 'NNGP <number>  NTK <number>' line in the output:\n" + run.Describe());
        Assert.That(run.Stdout, Does.Contain("\"layer\""), "the network's JSON in the output:\n" + run.Describe());

        // The packed library prints what the repository's build of the same snippet prints.
        var inProcess = ReadmeSnippetTests.RunQuickStart().Split('\n')[0];
        Assert.That(line.Value.TrimEnd('\r'), Is.EqualTo(inProcess), run.Describe());
    }

    /// <summary>The README's "Finite widths from C#" block on its own (as a new user pastes it into Program.cs)
    /// builds against the packed packages and prints what the repository's build prints.</summary>
    [Test]
    public void PackedSnippet_FiniteWidthsBlock_RunsOnItsOwn()
    {
        var code = string.Join("\n", FencedBlock(Path.Combine(RepoRoot, "README.md"), "### Finite widths from C#", "csharp")) + "\n";
        var app = Path.Combine(_root, "csharp", "FiniteApp");
        Directory.CreateDirectory(app);

        Run("new console", app, "new", "console", "--name", "FiniteApp", "--output", app, "--no-restore").AssertSucceeded();
        Run("add package", app, "add", "package", "NeuralTangents.CSharp", "--version", _version).AssertSucceeded(_sources);
        File.WriteAllText(Path.Combine(app, "Program.cs"), code);
        var run = Run("run", app, "run");
        run.AssertSucceeded(_sources + "\nProgram.cs:\n" + code);

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

        var expected = printed.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var lines = run.Stdout.Replace("\r", string.Empty, StringComparison.Ordinal).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines.Length, Is.GreaterThanOrEqualTo(3), run.Describe());
        Assert.That(lines[^3..], Is.EqualTo(expected), run.Describe());
    }

    [Test]
    public void PackedSnippet_FSharpReadmeBlock_RunsInANewScript()
    {
        var code = string.Join("\n", FencedBlock(Path.Combine(RepoRoot, "README.md"), "## F#", "fsharp")) + "\n";
        var dir = Path.Combine(_root, "fsharp");
        Directory.CreateDirectory(dir);
        var script = Path.Combine(dir, "snippet.fsx");
        var feed = _feed.Replace('\\', '/');
        File.WriteAllText(script, $"#i \"nuget: {feed}\"\n#r \"nuget: NeuralTangents.Core, {_version}\"\n\n" + code);

        var run = Run("fsi", dir, "fsi", "snippet.fsx");
        run.AssertSucceeded(_sources + "\nsnippet.fsx:\n" + File.ReadAllText(script));
        Assert.That(Regex.IsMatch(run.Stdout, @"^NNGP \[\[-?\d", RegexOptions.Multiline), Is.True, "an 'NNGP [[<number>' line:\n" + run.Describe());
        Assert.That(Regex.IsMatch(run.Stdout, @"^NTK  \[\[-?\d", RegexOptions.Multiline), Is.True, "an 'NTK  [[<number>' line:\n" + run.Describe());
        Assert.That(run.Stdout, Does.Contain("as JSON: {\"layer\":\"serial\""), run.Describe());
    }

    /// <summary>The README's install block on this machine: the tool packs as its three packages (the pointer, the
    /// precompiled linux-x64 one, the portable one) even where the ReadyToRun compiler is not cached yet (a pack
    /// that only restored it for RID builds failed there with NETSDK1094), installs from the folder, and answers
    /// <c>nt --version</c> with the packed version and <c>nt info</c> with its fields.</summary>
    [Test]
    public void PackedTool_InstallsFromTheFolder_AndAnswersVersionAndInfo()
    {
        var artifacts = Path.Combine(_root, "artifacts-tool");
        Run("pack NeuralTangents.Cli", RepoRoot, "pack", Path.Combine(RepoRoot, "src", "NeuralTangents.Cli", "NeuralTangents.Cli.fsproj"),
            "-c", "Release", "-p:Version=" + _version, "-o", _feed, "--artifacts-path", artifacts, "-nodeReuse:false").AssertSucceeded();
        foreach (var id in new[] { "NeuralTangents.Cli", "NeuralTangents.Cli.linux-x64", "NeuralTangents.Cli.any" })
        {
            var package = Path.Combine(_feed, $"{id}.{_version}.nupkg");
            Assert.That(File.Exists(package), Is.True, $"{package} was not written; the folder has: "
                + string.Join(", ", Directory.GetFiles(_feed).Select(Path.GetFileName)));
        }

        var toolDir = Path.Combine(_root, "tool");
        Run("tool install", _root, "tool", "install", "--tool-path", toolDir, "--add-source", _feed, "NeuralTangents.Cli",
            "--version", _version).AssertSucceeded(_sources);
        var nt = Path.Combine(toolDir, OperatingSystem.IsWindows() ? "nt.exe" : "nt");
        var version = RunFile(nt, "nt --version", _root, "--version");
        version.AssertSucceeded();
        Assert.That(version.Stdout.Trim(), Does.StartWith(_version), version.Describe());
        var info = RunFile(nt, "nt info", _root, "info");
        info.AssertSucceeded();
        foreach (var field in new[] { "nt:", ".NET runtime:", "cores:", "matrix product:", "native BLAS:", "native LAPACK:" })
        {
            Assert.That(info.Stdout, Does.Contain(field), info.Describe());
        }
    }

    private static bool IsUnder(string path, string folder)
    {
        var rel = Path.GetRelativePath(Path.GetFullPath(folder), Path.GetFullPath(path));
        return rel == "." || !(rel.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(rel));
    }

    private static string FindDotnet()
    {
        var name = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        var found = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d.Trim('"'), name))
            .FirstOrDefault(File.Exists);
        if (found is null)
        {
            Assert.Fail("PackedSnippetTests needs the .NET SDK's 'dotnet' command on PATH (to pack the libraries and build the "
                        + "README's snippets as a new user would), and PATH has none: " + Environment.GetEnvironmentVariable("PATH"));
        }

        return found!;
    }

    private static void DeleteDirectory(string path)
    {
        for (var attempt = 0; attempt < 3 && Directory.Exists(path); attempt++)
        {
            try
            {
                Directory.Delete(path, recursive: true);
            }
            catch (IOException) when (attempt < 2)
            {
                Thread.Sleep(1000);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                TestContext.Progress.WriteLine($"PackedSnippetTests: could not delete {path}: {e.Message}");
            }
        }
    }

    /// <summary>Runs <c>dotnet args…</c> in <paramref name="workDir"/>, with no MSBuild variables inherited from the
    /// test host, no node reuse and no shared compiler server (no process outlives the command), and a time limit.</summary>
    private ProcessResult Run(string what, string workDir, params string[] args) => RunFile(_dotnet, what, workDir, args);

    /// <summary><c>Run</c> for another program (an installed tool).</summary>
    private ProcessResult RunFile(string file, string what, string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["UseSharedCompilation"] = "false";
        psi.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";

        var command = Path.GetFileName(file) + " " + string.Join(" ", args.Select(a => a.Contains(' ') ? $"\"{a}\"" : a)) + $"   (in {workDir})";
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var outDone = new TaskCompletionSource();
        var errDone = new TaskCompletionSource();
        var clock = Stopwatch.StartNew();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { outDone.TrySetResult(); } else { lock (stdout) { stdout.Append(e.Data).Append('\n'); } }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) { errDone.TrySetResult(); } else { lock (stderr) { stderr.Append(e.Data).Append('\n'); } }
        };
        p.Start();
        p.StandardInput.Close();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var exited = p.WaitForExit(ProcessTimeout);
        if (!exited)
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit(TimeSpan.FromSeconds(30));
        }

        // A process that left children holding the pipes must not hang the test: wait a little for the ends of output.
        Task.WaitAll([outDone.Task, errDone.Task], TimeSpan.FromSeconds(30));
        clock.Stop();
        string o, e2;
        lock (stdout) { o = stdout.ToString(); }
        lock (stderr) { e2 = stderr.ToString(); }
        var result = new ProcessResult(what, command, exited ? p.ExitCode : -1, !exited, clock.Elapsed, o, e2);
        TestContext.Progress.WriteLine($"PackedSnippetTests: {what}: exit {result.ExitCode}{(exited ? "" : " (timed out)")} after {clock.Elapsed.TotalSeconds:F1} s");
        return result;
    }

    private sealed record ProcessResult(string What, string Command, int ExitCode, bool TimedOut, TimeSpan Elapsed,
                                        string Stdout, string Stderr)
    {
        private static string Tail(string s, int n = 20000) => s.Length <= n ? s : "…" + s[^n..];

        public string Describe() =>
            $"{Command}\nexit code {ExitCode}{(TimedOut ? $" (killed after the {ProcessTimeout.TotalMinutes} min limit)" : "")}, "
            + $"{Elapsed.TotalSeconds:F1} s\n--- stdout ---\n{Tail(Stdout)}\n--- stderr ---\n{Tail(Stderr)}";

        public void AssertSucceeded(string context = "")
        {
            if (TimedOut || ExitCode != 0)
            {
                Assert.Fail($"{What} failed:\n{Describe()}" + (context.Length > 0 ? $"\n--- context ---\n{context}" : ""));
            }
        }
    }
}
