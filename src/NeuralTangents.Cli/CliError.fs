namespace NeuralTangents.Cli

open System
open System.Text

/// <summary>A problem with the command line or the request that the user can fix; the CLI prints its message as
/// one line after "nt: ".</summary>
exception CliError of string with
    override e.Message = e.Data0

module internal CliErrors =

    /// Raises a <see cref="T:NeuralTangents.Cli.CliError"/> with the given message.
    let fail (message: string) = raise (CliError message)

    /// The longest echo of a user's value in a message, in characters, before it is cut with "…".
    let private echoLength = 80

    /// Control characters as \u001b-style escapes, so that no message can move the cursor or ring the terminal.
    let escapeControls (s: string) =
        if not (s |> Seq.exists Char.IsControl) then s
        else
            let b = StringBuilder(s.Length + 16)
            for c in s do
                if Char.IsControl c then b.AppendFormat("\\u{0:x4}", int c) |> ignore else b.Append c |> ignore
            b.ToString()

    /// The first n characters of s, one fewer when the n-th is the first half of a surrogate pair.
    let private prefix (n: int) (s: string) =
        if s.Length <= n then s
        elif Char.IsHighSurrogate s[n - 1] then s.Substring(0, n - 1)
        else s.Substring(0, n)

    /// A user's value as echoed in a message: control characters escaped, cut to about 80 characters with "…".
    let clip (s: string) =
        if isNull s then "null"
        else
            let escaped = escapeControls (prefix echoLength s)
            let shown = prefix echoLength escaped
            if s.Length > echoLength || shown.Length < escaped.Length then shown + "…" else shown
