/// <summary>The shortest decimal text that reads back as the same double, with .NET's layout (the characters of
/// <c>ToString("R", InvariantCulture)</c>), computed with exact 128-bit integer arithmetic for the doubles of
/// ordinary magnitude and left to .NET for the rest. Where .NET's text does not read back as the same double (it
/// prints 2^−25 as 2.980232238769531E-08, which reads back as the double below), this gives the text that does
/// (2.9802322387695312E-08, as Python's repr).</summary>
/// <remarks>
/// A positive normal double is v = c·2^q (2^52 ≤ c &lt; 2^53). Every real in (v − δ⁻, v + δ⁺) reads back as v, with
/// δ⁺ = 2^(q−1) and δ⁻ = δ⁺, or δ⁺/2 when c = 2^52 (the double below is closer); the ends read back as v when c is
/// even (ties go to the even mantissa). In units of 10^k with k = ⌊log10 2^q⌋ the interval is 2^q·10^−k ∈ [1, 10)
/// wide and v·10^−k ≥ 2^52 has 16 or 17 digits, so it holds at most one multiple of 10, and every shorter decimal
/// inside it is that multiple (its trailing zeros stripped); without one, the integers inside all have the same
/// length and the one nearest v is taken (ties to even), stepping inwards when the nearest falls outside (below a
/// power of two the interval is 3/4 as wide and may hold no integer: .NET's text then). For −31 ≤ k ≤ 0 (v from
/// 2^−51 ≈ 4.4e−16 to 2^56 ≈ 7.2e16) the ends and v are (4c ± 2 or 4c − 1)·5^−k·2^(q−2−k) with 4c·5^−k &lt; 2^128:
/// exact in UInt128, floors and remainders by shifts. Elsewhere (and for 0, subnormals) <c>ToString("R")</c> runs,
/// checked by reading it back at powers of two (there "G17" when it does not read back).
/// </remarks>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.ShortestDouble

open System
open System.Globalization

/// 5^i for i in 0..31, exactly.
let private pow5 : UInt128[] =
    let a = Array.zeroCreate 32
    a[0] <- UInt128.One
    for i in 1 .. 31 do a[i] <- a[i - 1] * UInt128(0UL, 5UL)
    a

/// ⌊log10 2^q⌋ for |q| ≤ 1650: ⌊q·log10(2)⌋ with log10(2) ≈ 78913/2^18 (exact on that range).
let inline private floorLog10Pow2 (q: int) = (q * 78913) >>> 18

/// "00", "01", …, "99": two digits per division by 100.
let private pairs = String.Join("", Array.init 100 (fun i -> i.ToString("00", CultureInfo.InvariantCulture)))

/// Writes the digits of a positive integer into dst from the right end (exclusive) leftwards; returns the number of
/// digits.
let private digitsInto (value: uint64) (dst: Span<char>) (right: int) =
    let mutable v = value
    let mutable p = right
    while v >= 100UL do
        let q = v / 100UL
        let r = int (v - q * 100UL)
        p <- p - 2
        dst[p] <- pairs[2 * r]
        dst[p + 1] <- pairs[2 * r + 1]
        v <- q
    if v >= 10UL then
        p <- p - 2
        dst[p] <- pairs[2 * int v]
        dst[p + 1] <- pairs[2 * int v + 1]
    else
        p <- p - 1
        dst[p] <- char (int '0' + int v)
    right - p

/// 10^i for i in 0..19.
let private pow10 : uint64[] = Array.init 20 (fun i -> pown 10UL i)

/// The number of decimal digits of d ≥ 1: from its bit length b, t = ⌊(b − 1)·1233/4096⌋ (⌊log10 2^(b−1)⌋, exact for
/// b ≤ 64) is the count less one or less two, so one comparison with 10^(t+1) settles it (no loop over the digits).
/// Inline: on its own, a method without a loop would start unoptimised.
let inline private digitCount (d: uint64) =
    let t = ((63 - Numerics.BitOperations.LeadingZeroCount d) * 1233) >>> 12
    if t < 19 && d >= pow10[t + 1] then t + 2 else t + 1

/// Lays out digits d (no trailing zeros) times 10^exp10 as .NET's "R" does: fixed notation when the first digit's
/// power of ten e is in −5 &lt; e &lt; 17, else d.ddddE±XX (two exponent digits at least). The digits go straight
/// to their places (no copies); returns the length.
let layout (negative: bool) (d: uint64) (exp10: int) (dst: Span<char>) : int =
    let n = digitCount d
    let e = exp10 + n - 1 // power of ten of the first digit
    let mutable p = 0
    if negative then
        dst[0] <- '-'
        p <- 1
    if e >= 17 || e <= -5 then
        // The digits at p + 1 .. p + n, then the first moved to p and the point after it.
        digitsInto d dst (p + n + 1) |> ignore
        if n > 1 then
            dst[p] <- dst[p + 1]
            dst[p + 1] <- '.'
            p <- p + n + 1
        else
            dst[p] <- dst[p + 1]
            p <- p + 1
        dst[p] <- 'E'
        dst[p + 1] <- (if e < 0 then '-' else '+')
        p <- p + 2
        let a = abs e
        let width = if a < 10 then 2 else digitCount (uint64 a)
        if a < 10 then dst[p] <- '0'
        digitsInto (uint64 a) dst (p + width) |> ignore
        p + width
    elif e < 0 then
        // 0.000ddd
        dst[p] <- '0'
        dst[p + 1] <- '.'
        p <- p + 2
        for _ in 1 .. -e - 1 do
            dst[p] <- '0'
            p <- p + 1
        digitsInto d dst (p + n) |> ignore
        p + n
    elif e + 1 >= n then
        // An integer: the digits, then zeros.
        digitsInto d dst (p + n) |> ignore
        p <- p + n
        for _ in 1 .. e + 1 - n do
            dst[p] <- '0'
            p <- p + 1
        p
    else
        // The digits at p + 1 .. p + n, the first e + 1 moved left by one and the point after them.
        digitsInto d dst (p + n + 1) |> ignore
        for i in 0 .. e do
            dst[p + i] <- dst[p + i + 1]
        dst[p + e + 1] <- '.'
        p + n + 1

// UInt128 comparisons by their 64-bit halves (F#'s = and > on a struct go through generic, boxing comparison).
let inline private high (x: UInt128) = uint64 (x >>> 64)
let inline private low (x: UInt128) = uint64 x
let inline private isZero (x: UInt128) = high x = 0UL && low x = 0UL
let inline private same (a: UInt128) (b: UInt128) = high a = high b && low a = low b
let inline private greater (a: UInt128) (b: UInt128) = high a > high b || (high a = high b && low a > low b)

/// d·10^k as (d without its trailing zeros, the power of ten of its last digit); d ≥ 1.
let private stripZeros (d: uint64) (k: int) =
    let mutable d = d
    let mutable p = k
    while d % 10UL = 0UL do
        d <- d / 10UL
        p <- p + 1
    struct (d, p)

/// The shortest digits of a positive normal double with −31 ≤ k ≤ 0, as (digits without trailing zeros, power of
/// ten of the last digit); None outside that range.
/// The body is one pass of a loop and its branches small: a method with a loop is compiled optimised at its first
/// call (nt turns quick JIT off for loops), while large branches would be lifted by the F# compiler into methods of
/// their own, without a loop, that run unoptimised (their UInt128 operators as calls) until the runtime recompiles
/// them: a cold process's formatting of a 2M-number answer took 309–511 ms that way, 185–265 ms now (Zen 3).
let digits (x: float) : struct (uint64 * int) voption =
    let bits = BitConverter.DoubleToUInt64Bits x &&& 0x7FFFFFFFFFFFFFFFUL
    let field = int (bits >>> 52)
    let c = (bits &&& 0xFFFFFFFFFFFFFUL) ||| 0x10000000000000UL
    let q = field - 1075
    let k = floorLog10Pow2 q
    let mutable result = ValueNone
    let mutable pass = field <> 0 && field <> 0x7FF && k >= -31 && k <= 0
    while pass do
        pass <- false
        let lowerHalf = (c = 0x10000000000000UL && field > 1)
        let inclusive = (c &&& 1UL) = 0UL
        let a = pow5[-k]
        // The ends and v in units of 2^(q−2−k)·… : 4c ± 2 (4c − 1 below a power of two), times 5^−k.
        let xv = UInt128(0UL, 4UL * c) * a
        let a2 = a + a
        let xl = xv - (if lowerHalf then a else a2)
        let xr = xv + a2
        // floor and remainder of X·2^e, e = q − 2 − k (e < 0: a right shift by s = −e; e ≥ 0: an exact integer,
        // remainder 0, shift s = 0 and the floor shifted left).
        let e = q - 2 - k
        let s = max 0 -e
        let up = max 0 e
        let mask = (UInt128.One <<< s) - UInt128.One
        let fl, rl = uint64 (xl >>> s) <<< up, xl &&& mask
        let fv, rv = uint64 (xv >>> s) <<< up, xv &&& mask
        let fr, rr = uint64 (xr >>> s) <<< up, xr &&& mask
        let half = if s = 0 then UInt128.Zero else UInt128.One <<< (s - 1)
        // Whether the integer m lies in the interval.
        let inline inside (m: uint64) =
            (m > fl || (m = fl && isZero rl && inclusive)) && (m < fr || (m = fr && (not (isZero rr) || inclusive)))
        // The least integer that may be inside: ⌈low⌉ (or the next one when the end is excluded).
        let first = if isZero rl && inclusive then fl else fl + 1UL
        let t10 = (first + 9UL) / 10UL * 10UL
        // Else the integer nearest v (ties to even), moved inwards when it falls outside; below a power of two the
        // interval can be narrower than one unit and hold no integer: then None (.NET's text).
        let roundUp = greater rv half || (same rv half && (fv &&& 1UL) = 1UL)
        let r = if s > 0 && roundUp then fv + 1UL else fv
        let r = if inside r then r elif r < first then r + 1UL else r - 1UL
        let m = if inside t10 then t10 else r
        if inside m then result <- ValueSome(stripZeros m k)
    result

/// Writes x's shortest round-trip text into dst (at least 32 chars); returns its length. Non-finite values are the
/// caller's to refuse.
let inline format (x: float) (dst: Span<char>) : int =
    match digits x with
    | ValueSome(struct (d, p)) -> layout (x < 0.0) d p dst
    | ValueNone ->
        let mutable n = 0
        if not (x.TryFormat(dst, &n, ReadOnlySpan<char>.Empty, CultureInfo.InvariantCulture)) then
            invalidArg "dst" "ShortestDouble.format needs at least 32 chars"
        // .NET's shortest text of a power of two can read back as the double below (2^−958, like 2^−25 above):
        // there the 17 significant digits of "G17", which always read back.
        let bits = BitConverter.DoubleToInt64Bits x
        if Double.IsFinite x && bits &&& 0xFFFFFFFFFFFFFL = 0L && x <> 0.0
           && BitConverter.DoubleToInt64Bits(Double.Parse(dst.Slice(0, n), NumberStyles.Float, CultureInfo.InvariantCulture)) <> bits then
            x.TryFormat(dst, &n, "G17".AsSpan(), CultureInfo.InvariantCulture) |> ignore
        n
