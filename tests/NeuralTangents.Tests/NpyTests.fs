/// The .npy reader and writer against numpy's format specification (numpy/lib/format.py): headers and data bytes
/// written out by hand here, never produced by the code under test.
module NeuralTangents.Tests.NpyTests

open System
open System.IO
open System.Text
open Expecto
open FsCheck
open FsCheck.FSharp
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// A .npy file assembled from the spec: magic, version, little-endian header length (uint16 for 1.x, uint32 for
/// 2.x/3.x), the header text, then the raw data bytes.
let private handMade (major: byte) (header: string) (data: byte[]) =
    let h = (if major = 3uy then Encoding.UTF8 else Encoding.ASCII).GetBytes header
    let len =
        if major = 1uy then [| byte (h.Length &&& 0xFF); byte (h.Length >>> 8) |]
        else [| byte (h.Length &&& 0xFF); byte ((h.Length >>> 8) &&& 0xFF); byte ((h.Length >>> 16) &&& 0xFF); byte (h.Length >>> 24) |]
    Array.concat [ [| 0x93uy; byte 'N'; byte 'U'; byte 'M'; byte 'P'; byte 'Y'; major; 0uy |]; len; h; data ]

let private stringContains (fragment: string, text: string) = Expect.stringContains text fragment "the text"

let private bits (xs: float[]) = xs |> Array.map BitConverter.DoubleToInt64Bits

let private roundTrip (t: Tensor) =
    use ms = new MemoryStream()
    Npy.writeStream ms t
    ms.Position <- 0L
    Npy.readStream ms

let private readBytes (bytes: byte[]) = Npy.readStream (new MemoryStream(bytes))

let private tempFile (bytes: byte[]) =
    let path = Path.Combine(Path.GetTempPath(), sprintf "nt-npy-%s.npy" (Guid.NewGuid().ToString("N")))
    File.WriteAllBytes(path, bytes)
    path

/// The error raised when reading <paramref name="bytes"/> from a file, whose message must name that file.
let private readError (bytes: byte[]) =
    let path = tempFile bytes
    try
        let e = throwsExactly<InvalidDataException> (fun () -> Npy.read path |> ignore)
        stringContains(path, e.Message)
        e.Message
    finally
        File.Delete path

[<Tests>]
let tests =
    testList "NpyTests" [
        // ---- Round trips: the format stores float64 bits verbatim, so equality is exact (bit for bit). ----

        [ ""
          "7"
          "2,3"
          "2,3,4"
          "1,2,1,3" ]
        |> testRows "round trip keeps shape and every bit" (fun (dims: string) ->
            let shape = if dims = "" then [||] else dims.Split(',') |> Array.map int
            let n = shape |> Array.fold (*) 1
            let data = normals 11 n |> Array.mapi (fun i v -> v * 10.0 ** float (i % 7 - 3))
            if n > 2 then
                data[0] <- -0.0
                data[1] <- Double.Epsilon // a subnormal
                data[2] <- Double.MaxValue
            let t = Tensor.create shape data
            let back = roundTrip t
            Expect.equal back.Shape shape "back.Shape"
            Expect.equal (bits back.Data) (bits data) "bits back.Data")

        testCase "round trip through a file" <| fun () ->
            let t = randomTensor 5 3 4
            let path = Path.Combine(Path.GetTempPath(), sprintf "nt-npy-%s.npy" (Guid.NewGuid().ToString("N")))
            try
                Npy.write path t
                let back = Npy.read path
                Expect.equal back.Shape [| 3; 4 |] "back.Shape"
                Expect.equal (bits back.Data) (bits t.Data) "bits back.Data"
            finally
                File.Delete path

        testPropertyWithConfig (fsCheck 200) "any float64 vector survives a round trip bit for bit, NaNs included" <| fun (data: float[]) ->
            let back = roundTrip (Tensor.create [| data.Length |] (Array.copy data))
            back.Shape = [| data.Length |] && bits back.Data = bits data

        testPropertyWithConfig (fsCheck 300) "headers end in a newline at a multiple of 64 bytes and read back for any shape" <| fun () ->
            let shapes = Gen.arrayOf (Gen.choose (0, Int32.MaxValue)) |> Gen.resize 6 |> Arb.fromGen
            Prop.forAll shapes (fun shape ->
                // A trailing zero-length axis makes the array empty, so the header alone is a whole file.
                let empty = Array.append shape [| 0 |]
                let h = Npy.headerOf empty
                h.Length % 64 = 0 && h[h.Length - 1] = byte '\n' && (readBytes h).Shape = empty)

        // ---- Byte-exact headers, written out from numpy's _write_array_header / _wrap_header ----

        testCase "a 2x3 array is written byte for byte as numpy.save writes it" <| fun () ->
            // dict text (59 chars, keys sorted, trailing ", ") + 20 spaces numpy reserves so the leading axis can grow to
            // 21 digits (21 - len("2")) + 38 spaces of padding + "\n": 10 + 118 = 128 = 2 * 64 bytes before the data.
            let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }" + String(' ', 20 + 38) + "\n"
            Expect.equal header.Length 118 "header.Length"
            let prefix = Array.concat [ [| 0x93uy; 0x4Euy; 0x55uy; 0x4Duy; 0x50uy; 0x59uy; 0x01uy; 0x00uy; 0x76uy; 0x00uy |]
                                        Encoding.ASCII.GetBytes header ]
            // 1.0 and -2.0 as little-endian IEEE 754 doubles.
            let one = [| 0uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0xF0uy; 0x3Fuy |]
            let minusTwo = [| 0uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0x00uy; 0xC0uy |]
            use ms = new MemoryStream()
            Npy.writeStream ms (Tensor.create [| 2; 3 |] [| 1.0; -2.0; 0.0; 0.0; 0.0; 0.0 |])
            let written = ms.ToArray()
            Expect.equal written.Length (128 + 6 * 8) "written.Length"
            Expect.equal (written[.. 127]) prefix "written[.. 127]"
            Expect.equal (written[128 .. 135]) one "written[128 .. 135]"
            Expect.equal (written[136 .. 143]) minusTwo "written[136 .. 143]"

        testCase "0-d and 1-d headers follow numpy's tuple spelling" <| fun () ->
            // () has no leading axis, so no growth room: 55 chars + 62 spaces + "\n" = 118; 10 + 118 = 128.
            let scalar = "{'descr': '<f8', 'fortran_order': False, 'shape': (), }" + String(' ', 62) + "\n"
            // (5,): 57 chars + 20 growth spaces (21 - len("5")) + 40 padding + "\n" = 118.
            let vector = "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }" + String(' ', 20 + 40) + "\n"
            for shape, expected in [ [||], scalar; [| 5 |], vector ] do
                use ms = new MemoryStream()
                Npy.writeStream ms (Tensor.zeros shape)
                let b = ms.ToArray()
                Expect.equal (int b[8] + 256 * int b[9]) expected.Length "int b[8] + 256 * int b[9]"
                Expect.equal (Encoding.ASCII.GetString(b, 10, expected.Length)) expected "Encoding.ASCII.GetString(b, 10, expected.Length)"

        // ---- Reading hand-built files ----

        testCase "float32 data is widened exactly" <| fun () ->
            // 1.5f, -0.25f and 0.1f as little-endian IEEE 754 singles; 0.1f is exactly 0.100000001490116119384765625.
            let data = [| 0x00uy; 0x00uy; 0xC0uy; 0x3Fuy; 0x00uy; 0x00uy; 0x80uy; 0xBEuy; 0xCDuy; 0xCCuy; 0xCCuy; 0x3Duy |]
            let t = readBytes (handMade 1uy "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }   \n" data)
            Expect.equal t.Shape [| 3 |] "t.Shape"
            Expect.equal t.Data [| 1.5; -0.25; 0.100000001490116119384765625 |] "t.Data"

        [ 2uy
          3uy ]
        |> testRows "versions 2.0 and 3.0 have a 4-byte header length" (fun (major: byte) ->
            // Keys in another order and double quotes: a reader must not depend on numpy's spelling.
            // 1.5 and -3.0 as little-endian IEEE 754 doubles.
            let data = [| 0uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0xF8uy; 0x3Fuy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0x08uy; 0xC0uy |]
            let t = readBytes (handMade major "{\"shape\": (2, 1), \"fortran_order\": False, \"descr\": \"<f8\"}\n" data)
            Expect.equal t.Shape [| 2; 1 |] "t.Shape"
            Expect.equal t.Data [| 1.5; -3.0 |] "t.Data")

        testCase "Fortran order is refused with the fix" <| fun () ->
            let msg = readError (handMade 1uy "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }\n" (Array.zeroCreate 32))
            stringContains("Fortran", msg)
            stringContains("np.ascontiguousarray", msg)

        testCase "an axis beyond one array is refused as too large, not as a bad shape" <| fun () ->
            let msg = readError (handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 3), }\n" (Array.zeroCreate 8))
            stringContains("an axis of 100000000000, more than one .NET array can hold", msg)
            stringContains("non-negative", readError (handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 3), }\n" (Array.zeroCreate 8)))

        testCase "a bad magic string is refused" <| fun () ->
            let bytes = handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n" (Array.zeroCreate 8)
            bytes[1] <- byte 'X'
            stringContains("magic", readError bytes)
            stringContains("empty", readError [||])

        [ "<i8"
          ">f8"
          "<c16" ]
        |> testRows "an unsupported dtype is refused naming it" (fun (descr: string) ->
            let msg = readError (handMade 1uy (sprintf "{'descr': '%s', 'fortran_order': False, 'shape': (1,), }\n" descr) (Array.zeroCreate 16))
            stringContains("unsupported dtype", msg)
            stringContains(descr, msg))

        testCase "a structured dtype is refused" <| fun () ->
            let msg = readError (handMade 1uy "{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }\n" (Array.zeroCreate 12))
            stringContains("unsupported dtype", msg)

        testCase "truncated data is refused with the sizes" <| fun () ->
            let msg = readError (handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n" (Array.zeroCreate 40))
            stringContains("truncated", msg)
            stringContains("48 bytes", msg)
            stringContains("40", msg)

        testCase "a truncated header is refused" <| fun () ->
            let full = handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n" (Array.zeroCreate 8)
            stringContains("truncated", readError full[.. 30])

        testCase "an unknown version and a malformed header are refused" <| fun () ->
            let v9 = handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n" (Array.zeroCreate 8)
            v9[6] <- 9uy
            stringContains("version 9.0", readError v9)
            stringContains("keys", readError (handMade 1uy "{'descr': '<f8', 'shape': (1,), }\n" (Array.zeroCreate 8)))
            stringContains("header", readError (handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (1,\n" (Array.zeroCreate 8)))

        // ---- Arrays larger than the 2^20-element chunks the reader and writer work in ----

        testCase "float64 arrays spanning several chunks round trip and truncation is counted across chunks" <| fun () ->
            let n = (1 <<< 20) * 2 + 3
            let data = Array.init n (fun i -> float i * 0.5 - 7.0)
            use ms = new MemoryStream()
            Npy.writeStream ms (Tensor.create [| n |] data)
            let bytes = ms.ToArray()
            let back = readBytes bytes
            Expect.equal (bits back.Data) (bits data) "bits back.Data"
            // Cut 8 bytes off: the message must count every byte present, i.e. 8n - 8 of 8n.
            let e = throwsExactly<InvalidDataException> (fun () -> readBytes bytes[.. bytes.Length - 9] |> ignore)
            stringContains (sprintf "needs %d bytes of data, the file holds only %d" (8 * n) (8 * n - 8), e.Message)

        testCase "float32 arrays spanning several chunks are widened exactly" <| fun () ->
            // Integers below 2^24 are exact in float32, so element k must read back as k.
            let n = (1 <<< 20) + 5
            let data = Array.zeroCreate<byte> (4 * n)
            for k in 0 .. n - 1 do
                System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(Span(data, 4 * k, 4), float32 k)
            let t = readBytes (handMade 1uy (sprintf "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }\n" n) data)
            Expect.equal t.Data (Array.init n float) "t.Data"

        testCase "(8) a header claiming more data than the file holds is refused before allocating for it" <| fun () ->
            let bytes = handMade 1uy "{'descr': '<f8', 'fortran_order': False, 'shape': (40000, 40000), }\n" (Array.zeroCreate 8)
            let before = GC.GetAllocatedBytesForCurrentThread()
            let msg = readError bytes
            let allocated = GC.GetAllocatedBytesForCurrentThread() - before
            stringContains("needs 12800000000 bytes of data, the file holds only 8", msg)
            // The claimed array is 12.8 GB; reading the header and failing costs a few kilobytes.
            Expect.isLessThan allocated 10_000_000L "bytes allocated"
    ]
