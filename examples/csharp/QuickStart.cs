// The C# quick start shown in README.md: a whole Program.cs (top-level statements). The code between the markers is
// the README's C# block verbatim, so it is what a new console project with a PackageReference to
// NeuralTangents.CSharp compiles. tests/NeuralTangents.CSharp.Tests compiles this file as its program's entry point,
// ReadmeSnippetTests runs it and checks what it prints, and PackedSnippetTests builds the README's block in a fresh
// project against the packed packages.
// <snippet>
using NeuralTangents.CSharp;

var net = new NetworkBuilder()
    .Dense(512, wStd: 1.5, bStd: 0.05).Relu()
    .Dense(1, wStd: 1.5, bStd: 0.05)
    .Build();

double[,] x = { { 1.0, 0.0 }, { 0.6, 0.8 } };  // 2 inputs × 2 features
KernelResult k = net.Kernel(x);                  // x2 omitted: kernels of x with itself
Console.WriteLine($"NNGP {k.Nngp[0, 1]:F6}  NTK {k.Ntk![0, 1]:F6}");
Console.WriteLine(net.ToJson());                 // neural_tangents' layer names
// </snippet>
