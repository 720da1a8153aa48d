namespace NeuralTangents

open System
open System.Buffers.Binary
open System.Globalization
open System.IO
open System.Runtime.InteropServices
open System.Text

/// <summary>
/// NumPy's <c>.npy</c> file format (<c>numpy.lib.format</c>) for float tensors: the magic string <c>\x93NUMPY</c>,
/// a major and a minor version byte, the header length (little-endian uint16 in version 1.0, uint32 in 2.0 and 3.0),
/// then an ASCII (3.0: UTF-8) Python dict literal with the keys <c>'descr'</c>, <c>'fortran_order'</c> and
/// <c>'shape'</c>, padded with spaces and ended by a newline so that the data starts at a multiple of 64 bytes.
/// Reads little-endian float64 (<c>'&lt;f8'</c>) and float32 (<c>'&lt;f4'</c>, widened) arrays in C order, of any
/// rank; writes float64 in version 1.0 exactly as <c>numpy.save</c> does.
/// </summary>
[<RequireQualifiedAccess>]
module Npy =

    let private magic = [| 0x93uy; byte 'N'; byte 'U'; byte 'M'; byte 'P'; byte 'Y' |]

    /// The data offset is a multiple of this (numpy's ARRAY_ALIGN).
    let private align = 64

    /// numpy leaves room for the leading axis to grow to this many digits (GROWTH_AXIS_MAX_DIGITS).
    let private growthDigits = 21

    /// numpy refuses headers longer than 10,000 characters by default; allow more, but not unbounded.
    let private maxHeaderLength = 1 <<< 20

    let private bad (name: string) (what: string) : 'a =
        raise (InvalidDataException $"{name}: {what}")

    // ---- A minimal reader of the Python literals a header holds ----

    type private PyValue =
        | PyStr of string
        | PyInt of int64
        | PyBool of bool
        | PyNone
        | PyTuple of PyValue list
        | PyList of PyValue list
        | PyDict of (PyValue * PyValue) list

    /// Header text as echoed in a message: control characters escaped, cut to about 80 characters with "…".
    let private clip (s: string) =
        let b = StringBuilder()
        let mutable i = 0
        while i < s.Length && b.Length < 80 do
            if Char.IsControl s[i] then b.AppendFormat("\\u{0:x4}", int s[i]) |> ignore else b.Append s[i] |> ignore
            i <- i + 1
        if i < s.Length then b.Append '…' |> ignore
        b.ToString()

    let rec private showPyAll (v: PyValue) =
        let showPy = showPyAll
        let join (vs: PyValue list) = String.Join(", ", vs |> List.map showPy)
        match v with
        | PyStr s -> "'" + s + "'"
        | PyInt i -> string i
        | PyBool b -> if b then "True" else "False"
        | PyNone -> "None"
        | PyTuple vs -> "(" + join vs + (if vs.Length = 1 then ",)" else ")")
        | PyList vs -> "[" + join vs + "]"
        | PyDict kvs -> "{" + String.Join(", ", kvs |> List.map (fun (k, v) -> showPy k + ": " + showPy v)) + "}"

    /// A header value as echoed in a message, cut by <c>clip</c>.
    let private showPy (v: PyValue) = clip (showPyAll v)

    /// Parses the header text; raises with <paramref name="fail"/> on anything it cannot read.
    let private parsePy (fail: string -> PyValue) (text: string) : PyValue =
        let mutable i = 0
        let skipWs () =
            while i < text.Length && Char.IsWhiteSpace text[i] do
                i <- i + 1
        let expect (c: char) =
            skipWs ()
            if i >= text.Length || text[i] <> c then
                fail ("header is not a valid Python literal: expected '" + string c + "' at character " + string i + " of " + (clip text)) |> ignore
            i <- i + 1
        let rec value () : PyValue =
            skipWs ()
            if i >= text.Length then fail "header ends inside a value"
            else
                match text[i] with
                | '\'' | '"' ->
                    let q = text[i]
                    let start = i + 1
                    let close = text.IndexOf(q, start)
                    if close < 0 then fail "header has an unterminated string"
                    else
                        i <- close + 1
                        PyStr(text.Substring(start, close - start))
                | '(' -> i <- i + 1; PyTuple(items ')')
                | '[' -> i <- i + 1; PyList(items ']')
                | '{' ->
                    i <- i + 1
                    let pairs = ResizeArray()
                    let mutable fin = false
                    while not fin do
                        skipWs ()
                        if i < text.Length && text[i] = '}' then
                            i <- i + 1
                            fin <- true
                        else
                            let k = value ()
                            expect ':'
                            let v = value ()
                            pairs.Add((k, v))
                            skipWs ()
                            if i < text.Length && text[i] = ',' then
                                i <- i + 1
                            else
                                expect '}'
                                fin <- true
                    PyDict(List.ofSeq pairs)
                | c when Char.IsDigit c || c = '-' || c = '+' ->
                    let start = i
                    i <- i + 1
                    while i < text.Length && Char.IsDigit text[i] do
                        i <- i + 1
                    let digits = text.Substring(start, i - start)
                    // Python 2 wrote long integers with an 'L' suffix.
                    if i < text.Length && (text[i] = 'L' || text[i] = 'l') then i <- i + 1
                    match Int64.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) with
                    | true, n -> PyInt n
                    | _ -> fail $"header has an invalid integer '{clip digits}'"
                | _ ->
                    let start = i
                    while i < text.Length && Char.IsLetter text[i] do
                        i <- i + 1
                    match text.Substring(start, i - start) with
                    | "True" -> PyBool true
                    | "False" -> PyBool false
                    | "None" -> PyNone
                    | _ -> fail $"header is not a valid Python literal: unexpected text at character {string start} of {clip text}"
        and items (close: char) : PyValue list =
            let acc = ResizeArray()
            let mutable fin = false
            while not fin do
                skipWs ()
                if i < text.Length && text[i] = close then
                    i <- i + 1
                    fin <- true
                else
                    acc.Add(value ())
                    skipWs ()
                    if i < text.Length && text[i] = ',' then
                        i <- i + 1
                    else
                        expect close
                        fin <- true
            List.ofSeq acc
        let v = value ()
        skipWs ()
        if i < text.Length then fail $"header has trailing text after the dictionary: {clip text}"
        else v

    // ---- Reading ----

    type private Dtype =
        | F8
        | F4

    /// Reads exactly buffer.Length bytes; returns how many were available.
    let private readUpTo (stream: Stream) (buffer: Span<byte>) =
        let mutable got = 0
        let mutable eof = false
        while not eof && got < buffer.Length do
            let n = stream.Read(buffer.Slice got)
            if n = 0 then eof <- true else got <- got + n
        got

    let private readFrom (name: string) (stream: Stream) : Tensor =
        let fail what = bad name what
        let prefix = Array.zeroCreate<byte> 8
        let got = readUpTo stream (Span prefix)
        if got = 0 then fail "the file is empty, not a .npy array"
        if got < 6 || not (Span(prefix, 0, 6).SequenceEqual(ReadOnlySpan magic)) then
            fail "not a .npy file (it does not start with the magic string \\x93NUMPY)"
        if got < 8 then fail "truncated: the file ends inside the format version"
        let major, minor = prefix[6], prefix[7]
        let lenBytes, encoding =
            match major, minor with
            | 1uy, 0uy -> 2, Encoding.Latin1
            | 2uy, 0uy -> 4, Encoding.Latin1
            | 3uy, 0uy -> 4, Encoding.UTF8
            | _ -> fail ("unsupported .npy format version " + string major + "." + string minor + " (supported: 1.0, 2.0, 3.0)")
        let lenBuf = Array.zeroCreate<byte> lenBytes
        if readUpTo stream (Span lenBuf) < lenBytes then fail "truncated: the file ends inside the header length"
        let headerLen =
            if lenBytes = 2 then int (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan lenBuf))
            else
                let n = BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan lenBuf)
                if n > uint32 maxHeaderLength then fail $"the header length {string n} is implausibly large"
                int n
        let headerBytes = Array.zeroCreate<byte> headerLen
        if readUpTo stream (Span headerBytes) < headerLen then
            fail $"truncated: the file ends inside the {string headerLen}-byte header"
        let header = encoding.GetString headerBytes
        let failPy (what: string) : PyValue = fail what
        let entries =
            match parsePy failPy header with
            | PyDict kvs -> kvs
            | v -> fail $"the header is not a dictionary: {showPy v}"
        let keys = entries |> List.map (fst >> function PyStr k -> k | k -> showPy k)
        if List.sort keys <> [ "descr"; "fortran_order"; "shape" ] then
            fail $"""the header must have exactly the keys 'descr', 'fortran_order' and 'shape', got {(clip (String.Join(", ", keys)))}"""
        let entry k = entries |> List.pick (fun (key, v) -> if key = PyStr k then Some v else None)
        let dtype =
            match entry "descr" with
            | PyStr "<f8" -> F8
            | PyStr "<f4" -> F4
            | d ->
                fail $"unsupported dtype {showPy d}: only little-endian float64 ('<f8') and float32 ('<f4') are read; convert with x.astype(np.float64)"
        match entry "fortran_order" with
        | PyBool false -> ()
        | PyBool true ->
            fail "the array is stored in Fortran (column-major) order; save it in C order, e.g. np.save(path, np.ascontiguousarray(x))"
        | v -> fail $"'fortran_order' must be True or False, got {showPy v}"
        let shape =
            match entry "shape" with
            | PyTuple dims ->
                dims
                |> List.map (function
                    | PyInt d when d >= 0L && d <= int64 Int32.MaxValue -> int d
                    | PyInt d when d > int64 Int32.MaxValue ->
                        fail ("the array of shape " + (showPy (PyTuple dims)) + " has an axis of " + string d + ", more than one .NET array can hold (" + string Array.MaxLength + ")")
                    | _ -> fail $"'shape' must be a tuple of non-negative integers, got {showPy (PyTuple dims)}")
                |> List.toArray
            | v -> fail $"'shape' must be a tuple of integers, got {showPy v}"
        let count = shape |> Array.fold (fun acc d -> acc * int64 d) 1L
        if count > int64 Array.MaxLength then
            fail ("the array of shape " + (showPy (entry "shape")) + " has " + string count + " elements, more than one .NET array can hold")
        let n = int count
        let itemSize = match dtype with F8 -> 8 | F4 -> 4
        let expected = int64 n * int64 itemSize
        let truncated (got: int64) : unit =
            fail ("truncated: shape " + (showPy (entry "shape")) + " needs " + string expected + " bytes of data, the file holds only " + string got)
        // A header can claim any shape: compare it with what the file holds before allocating for it.
        if stream.CanSeek then
            let available = max 0L (stream.Length - stream.Position)
            if available < expected then truncated available
        let data = Pages.uninitialized n
        // Read in chunks: a span over more than 2 GiB of bytes cannot be formed, and float32 needs a staging buffer.
        let chunk = 1 <<< 20 // elements
        let mutable off = 0
        let staging = match dtype with F4 -> Array.zeroCreate<byte> (4 * min chunk n) | F8 -> [||]
        while off < n do
            let len = min chunk (n - off)
            match dtype with
            | F8 ->
                let bytes = MemoryMarshal.AsBytes(Span(data, off, len))
                let got = readUpTo stream bytes
                if got < bytes.Length then truncated (int64 off * 8L + int64 got)
                if not BitConverter.IsLittleEndian then
                    for k in off .. off + len - 1 do
                        data[k] <- BitConverter.Int64BitsToDouble(BinaryPrimitives.ReverseEndianness(BitConverter.DoubleToInt64Bits data[k]))
            | F4 ->
                let bytes = Span(staging, 0, 4 * len)
                let got = readUpTo stream bytes
                if got < bytes.Length then truncated (int64 off * 4L + int64 got)
                for k in 0 .. len - 1 do
                    data[off + k] <- float (BinaryPrimitives.ReadSingleLittleEndian(ReadOnlySpan(staging, 4 * k, 4)))
            off <- off + len
        Tensor.create shape data

    /// <summary>Reads a tensor from a <c>.npy</c> stream, leaving the stream just after the array data.</summary>
    /// <param name="stream">A readable stream positioned at the magic string.</param>
    /// <returns>The array as a float64 tensor (float32 data is widened exactly).</returns>
    /// <exception cref="T:System.IO.InvalidDataException">when the data is not a C-order float64/float32 .npy array or is
    /// truncated; the message says what is wrong.</exception>
    [<CompiledName("ReadStream")>]
    let readStream (stream: Stream) : Tensor =
        if isNull stream then nullArg "stream"
        readFrom "npy stream" stream

    /// <summary>Reads a tensor from a <c>.npy</c> file.</summary>
    /// <param name="path">The file to read.</param>
    /// <returns>The array as a float64 tensor (float32 data is widened exactly).</returns>
    /// <exception cref="T:System.IO.InvalidDataException">when the file is not a C-order float64/float32 .npy array or is
    /// truncated; the message names the file and what is wrong.</exception>
    /// <exception cref="T:System.IO.IOException">when the file cannot be opened.</exception>
    [<CompiledName("Read")>]
    let read (path: string) : Tensor =
        if isNull path then nullArg "path"
        use f = File.OpenRead path
        readFrom path f

    // ---- Writing ----

    /// The header numpy writes for a C-order float64 array: the sorted-key dict, numpy's spare room for the leading
    /// axis to grow, then spaces and a newline up to the 64-byte boundary.
    let internal headerOf (shape: int[]) : byte[] =
        let dims =
            match shape with
            | [||] -> "()"
            | [| d |] -> $"({string d},)"
            | _ -> "(" + String.Join(", ", shape) + ")"
        let dict = $"{{'descr': '<f8', 'fortran_order': False, 'shape': {dims}, }}"
        let growth = if shape.Length = 0 then 0 else max 0 (growthDigits - string(shape[0]).Length)
        let body = dict + String(' ', growth)
        let hlen = body.Length + 1 // with the final newline
        let pad = align - ((magic.Length + 2 + 2 + hlen) % align)
        let total = body.Length + pad + 1
        if total > int UInt16.MaxValue then invalidArg "shape" $"rank {string shape.Length} is too large for a .npy 1.0 header"
        let out = Array.zeroCreate<byte> (magic.Length + 4 + total)
        Array.blit magic 0 out 0 magic.Length
        out[6] <- 1uy
        out[7] <- 0uy
        BinaryPrimitives.WriteUInt16LittleEndian(Span(out, 8, 2), uint16 total)
        let text = Encoding.ASCII.GetBytes(body + String(' ', pad) + "\n")
        Array.blit text 0 out 10 text.Length
        out

    /// <summary>Writes a tensor to a stream as a little-endian float64, C-order, version 1.0 <c>.npy</c> array.</summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="t">The tensor.</param>
    [<CompiledName("WriteStream")>]
    let writeStream (stream: Stream) (t: Tensor) : unit =
        if isNull stream then nullArg "stream"
        let header = headerOf t.Shape
        stream.Write(header, 0, header.Length)
        if BitConverter.IsLittleEndian then
            // In chunks: a span over more than 2 GiB of bytes cannot be formed.
            let chunk = 1 <<< 20
            let mutable off = 0
            while off < t.Data.Length do
                let len = min chunk (t.Data.Length - off)
                stream.Write(MemoryMarshal.AsBytes(ReadOnlySpan(t.Data, off, len)))
                off <- off + len
        else
            let b = Array.zeroCreate<byte> 8
            for v in t.Data do
                BinaryPrimitives.WriteDoubleLittleEndian(Span b, v)
                stream.Write(b, 0, 8)
        stream.Flush()

    /// <summary>Writes a tensor to a <c>.npy</c> file (float64, C order, format 1.0), byte for byte as
    /// <c>numpy.save</c> writes a float64 array; <c>np.load</c> reads it back.</summary>
    /// <param name="path">The file to create or overwrite.</param>
    /// <param name="t">The tensor.</param>
    /// <exception cref="T:System.IO.IOException">when the file cannot be written.</exception>
    [<CompiledName("Write")>]
    let write (path: string) (t: Tensor) : unit =
        if isNull path then nullArg "path"
        use f = File.Create path
        writeStream f t
