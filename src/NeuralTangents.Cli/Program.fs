module NeuralTangents.Cli.Program

[<EntryPoint>]
let main argv =
    eprintfn "nt: no command yet"
    2
