module NeuralTangents.Cli.Program

open System

[<EntryPoint>]
let main argv =
    Cli.run argv Console.In Console.Out Console.Error
