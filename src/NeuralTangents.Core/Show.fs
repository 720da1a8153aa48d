namespace NeuralTangents

open System
open System.Globalization

/// <summary>Numbers and shapes as text for messages, the same characters as F#'s <c>sprintf</c> gives for
/// <c>%g</c>, <c>%.Nf</c> and <c>%A</c> of an int array or list, culture-invariant. Messages are interpolated
/// strings over these, not <c>sprintf</c>: <c>sprintf</c> builds its formatter by reflection
/// (<c>MakeGenericMethod</c>), which a Native AOT build of <c>nt</c> cannot do, and which costs a JIT build tens
/// of milliseconds on its first use.</summary>
module internal Show =

    /// <c>sprintf "%g" x</c>: six significant digits, exponent with sign and at least two digits ("1e-05").
    let g (x: float) = x.ToString("g6", CultureInfo.InvariantCulture)

    /// <c>sprintf "%.*f" digits x</c>: fixed point with the given number of decimals.
    let decimals (digits: int) (x: float) = x.ToString("F" + string digits, CultureInfo.InvariantCulture)

    /// <c>sprintf "%A"</c> of an int array: "[|1; 2; 3|]".
    let ints (xs: int[]) = "[|" + String.Join("; ", xs) + "|]"

    /// <c>sprintf "%A"</c> of an int list: "[1; 2; 3]".
    let intList (xs: int list) = "[" + String.Join("; ", xs) + "]"

    /// <c>sprintf "%A"</c> of a string list: "[\"a\"; \"b\"]".
    let strings (xs: string list) = "[" + String.Join("; ", xs |> List.map (fun s -> "\"" + s + "\"")) + "]"

    /// <c>sprintf "%A"</c> of a bool option: "Some true", "Some false" or "None".
    let boolOption (b: bool option) =
        match b with
        | Some true -> "Some true"
        | Some false -> "Some false"
        | None -> "None"

    /// <c>sprintf "%.*g" digits x</c>: the given number of significant digits.
    let digits (digits: int) (x: float) = x.ToString("g" + string digits, CultureInfo.InvariantCulture)
