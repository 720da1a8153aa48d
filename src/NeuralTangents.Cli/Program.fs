module NeuralTangents.Cli.Program

open System

[<EntryPoint>]
let main argv =
    // At an interactive terminal, a missing request file is an error rather than a silent wait for typed JSON.
    let stdin = if Console.IsInputRedirected then Console.In else IO.TextReader.Null
    Cli.run argv stdin Console.Out Console.Error
