namespace NeuralTangents.Cli

/// <summary>A problem with the command line or the request that the user can fix; the CLI prints its message as
/// one line after "nt: ".</summary>
exception CliError of string with
    override e.Message = e.Data0

module internal CliErrors =

    /// Raises a <see cref="T:NeuralTangents.Cli.CliError"/> with a formatted message.
    let fail fmt = Printf.kprintf (fun s -> raise (CliError s)) fmt
