/// Message text without F#'s printf: Show's numbers against sprintf's own (the independent reference), and no printf
/// format left in the product's assemblies (a Native AOT build of nt cannot build printf's formatters).
module NeuralTangents.Tests.MessageTextTests

open System
open System.IO
open System.Reflection.Metadata
open System.Reflection.Metadata.Ecma335
open System.Reflection.PortableExecutable
open Expecto
open NeuralTangents

/// The string literals each method loads (ldstr, opcode 0x72 with a user-string token 0x70xxxxxx), as
/// (Type::Method, text). The IL is scanned byte by byte: an operand byte that happens to look like ldstr with a valid
/// token adds a string to check, never hides one.
let private literals (path: string) =
    use pe = new PEReader(File.OpenRead path)
    let md = pe.GetMetadataReader()
    [ for th in md.TypeDefinitions do
        let t = md.GetTypeDefinition th
        for mh in t.GetMethods() do
            let m = md.GetMethodDefinition mh
            if m.RelativeVirtualAddress <> 0 then
                let il = pe.GetMethodBody(m.RelativeVirtualAddress).GetILBytes()
                for i in 0 .. il.Length - 5 do
                    let token = BitConverter.ToInt32(il, i + 1)
                    if il[i] = 0x72uy && token >>> 24 = 0x70 then
                        match (try md.GetUserString(MetadataTokens.UserStringHandle(token &&& 0xFFFFFF)) with _ -> null) with
                        | null -> ()
                        | text -> yield md.GetString t.Name + "::" + md.GetString m.Name, text ]

[<Tests>]
let tests =
    testList "MessageTextTests" [
        testCase "Show gives sprintf's text for %g, %.Ng, %.Nf and %A of ints, int lists and bool options" <| fun () ->
            let rnd = Random 5
            let specials = [ 0.0; -0.0; 1.0; 0.1; 1e-5; 1e-4; 123456.0; 1234567.0; 999999.5; 1e21; 1e-300; 5e-324; nan; infinity; -infinity; -7.25; 2.0 ** 60.0 ]
            let randoms = [ for _ in 1 .. 20000 -> (rnd.NextDouble() - 0.5) * 10.0 ** float (rnd.Next(-320, 309)) ]
            for x in specials @ randoms do
                Expect.equal (Show.g x) (sprintf "%g" x) "%g"
                Expect.equal (Show.digits 3 x) (sprintf "%.3g" x) "%.3g"
                Expect.equal (Show.digits 2 x) (sprintf "%.2g" x) "%.2g"
                if abs x < 1e17 || not (Double.IsFinite x) then
                    Expect.equal (Show.decimals 2 x) (sprintf "%.2f" x) "%.2f"
                    Expect.equal (Show.decimals 0 x) (sprintf "%.0f" x) "%.0f"
            for xs in [ [||]; [| 3 |]; [| 1; -2; 300 |] ] do
                Expect.equal (Show.ints xs) (sprintf "%A" xs) "ints"
                Expect.equal (Show.intList (List.ofArray xs)) (sprintf "%A" (List.ofArray xs)) "intList"
            for b in [ Some true; Some false; None ] do
                Expect.equal (Show.boolOption b) (sprintf "%A" b) "boolOption"

        testCase "no printf format is left in NeuralTangents.Core and nt (messages concatenate strings)" <| fun () ->
            // An interpolated string with a non-string hole, or more than four parts, compiles to printf and keeps its
            // format ("%P()" per hole); sprintf keeps its own ("%d"). The one exception is F#'s generated ToString of
            // records and unions and their debugger display ("%+A"), which the product never calls.
            let printf = Text.RegularExpressions.Regex "%P\\(|%[-+0 ]*[0-9]*(\\.[0-9]+)?[sdigfAOcxXeEb](?![a-z])"
            let dir = Path.GetDirectoryName(typeof<Tensor>.Assembly.Location)
            for dll in [ typeof<Tensor>.Assembly.Location; Path.Combine(dir, "nt.dll") ] do
                let formats =
                    literals dll
                    |> List.filter (fun (m, text) -> printf.IsMatch text && not ((m.EndsWith "::ToString" || m.EndsWith "::__DebugDisplay") && text.StartsWith "%+"))
                Expect.equal formats [] (Path.GetFileName dll + ": printf formats")
    ]
