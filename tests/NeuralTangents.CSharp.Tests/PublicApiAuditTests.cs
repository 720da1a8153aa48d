using System.Reflection;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The C# façade's public surface uses only BCL types and its own types, so C# callers never meet F#
/// types (FSharpList, FSharpOption, F# unions and records of the core). Members that still do are listed in
/// <see cref="KnownFSharpTypes"/>: the test fails when a new one appears and when a listed one is fixed.</summary>
[TestFixture]
public class PublicApiAuditTests
{
    /// <summary>Public members whose signatures still name non-BCL, non-façade types (found by this audit).</summary>
    private static readonly string[] KnownFSharpTypes =
    {
        // Deliberate F# interop: hand a network or parameters to and from F# code.
        "Network.FromFSharp: NeuralTangents.Layer",
        "Network.ToFSharp: NeuralTangents.Layer",
        "NetworkParameters.ToFSharp: NeuralTangents.Params",
    };

    private static IEnumerable<Type> Mentioned(Type t)
    {
        if (t.IsByRef || t.IsArray || t.IsPointer)
        {
            foreach (var e in Mentioned(t.GetElementType()!))
            {
                yield return e;
            }

            yield break;
        }

        if (t.IsGenericParameter)
        {
            yield break;
        }

        if (t.IsGenericType)
        {
            yield return t.GetGenericTypeDefinition();
            foreach (var a in t.GetGenericArguments().SelectMany(Mentioned))
            {
                yield return a;
            }

            yield break;
        }

        yield return t;
    }

    private static IEnumerable<(string Member, Type Type)> Signature(Type owner, MemberInfo m)
    {
        var name = owner.Name + "." + m.Name;
        IEnumerable<Type> types = m switch
        {
            MethodBase mb => mb.GetParameters().Select(p => p.ParameterType)
                .Concat(mb is MethodInfo mi ? new[] { mi.ReturnType } : Array.Empty<Type>()),
            PropertyInfo p => new[] { p.PropertyType },
            FieldInfo f => new[] { f.FieldType },
            EventInfo e => new[] { e.EventHandlerType! },
            _ => Array.Empty<Type>(),
        };
        return types.SelectMany(Mentioned).Select(t => (name, t));
    }

    [Test]
    public void PublicSignatures_UseOnlyBclAndFacadeTypes()
    {
        var facade = typeof(Network).Assembly;
        bool Allowed(Type t) =>
            t.Assembly == facade || (t.Namespace is { } ns && (ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal))
                                     && !t.Assembly.GetName().Name!.StartsWith("FSharp", StringComparison.Ordinal));
        const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var found = facade.GetExportedTypes()
            .SelectMany(owner => owner.GetMembers(flags)
                .Where(m => m is not MethodInfo { IsSpecialName: true } || m.Name.StartsWith("op_", StringComparison.Ordinal))
                .SelectMany(m => Signature(owner, m)))
            .Where(s => !Allowed(s.Type))
            .Select(s => $"{s.Member}: {s.Type.FullName}")
            .Distinct()
            .OrderBy(s => s, StringComparer.Ordinal)
            .ToArray();
        Assert.That(found, Is.EqualTo(KnownFSharpTypes.OrderBy(s => s, StringComparer.Ordinal).ToArray()),
            "public members naming non-BCL types:\n" + string.Join("\n", found));
    }
}
