/// The flat linear algebra of prediction (Predict/Factor.fs, Linalg's triangular kernels) against independent
/// references: MathNet's LU solves and explicit products, never the code under test. Native (OpenBLAS/LAPACKE,
/// when loaded) and managed paths are both checked. Sizes are odd and cross the blocking boundaries (64-row
/// Cholesky blocks, 16-row solve groups). Tolerance rule: kernels X·Xᵀ/d + ridge·I with d ≥ 2N have condition
/// numbers ≲ 1e2, so a backward-stable solve is within κ·N·ε ≲ 1e-12 of the truth; we use 1e-12 relative Frobenius.
module NeuralTangents.Tests.PredictFactorTests

open System
open MathNet.Numerics.LinearAlgebra
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

type private M = Matrix<float>

let private ofRows (r: int) (c: int) (a: float[]) : M = Matrix<float>.Build.Dense(r, c, fun i j -> a[i * c + j])
let private rows (m: M) = m.ToRowMajorArray()

/// A well-conditioned SPD N×N Gram matrix X·Xᵀ/d + 0.1·I, d = 2N + 3, slightly asymmetric by round-off-sized noise.
let private spd (seed: int) (n: int) =
    let d = 2 * n + 3
    let x = ofRows n d (normals seed (n * d))
    let g = x * x.Transpose() / float d + 0.1 * Matrix<float>.Build.DenseIdentity n
    let a = rows g
    let noise = normals (seed + 1) (n * n)
    Array.mapi (fun i v -> v * (1.0 + 1e-15 * noise[i])) a

let private lowerOf (n: int) (a: float[]) : M = Matrix<float>.Build.Dense(n, n, fun i j -> if j <= i then a[i * n + j] else 0.0)

let private symOf (n: int) (a: float[]) : M = Matrix<float>.Build.Dense(n, n, fun i j -> 0.5 * (a[i * n + j] + a[j * n + i]))

[<Tests>]
let tests =
    testList "PredictFactorTests" [
        testCase "in-place Cholesky, native and managed, is L with L·Lᵀ = A and leaves the upper triangle alone" <| fun () ->
            for n in [ 1; 7; 130 ] do
                let a = symOf n (spd 3 n) |> rows
                let sentinel i j = float (1000 + i * n + j)
                let marked () =
                    Array.init (n * n) (fun idx -> let i, j = idx / n, idx % n in if j > i then sentinel i j else a[idx])
                for name, f in [ "dispatch", Linalg.choleskyLowerInPlace; "managed", Linalg.choleskyLowerInPlaceManaged ] do
                    let buf = marked ()
                    Expect.equal (f buf n) 0 (sprintf "%s info n=%d" name n)
                    let l = lowerOf n buf
                    assertClose (sprintf "%s L·Lᵀ n=%d" name n) 1e-13 a (rows (l * l.Transpose()))
                    for i in 0 .. n - 1 do
                        Expect.isGreaterThan buf[i * n + i] 0.0 "positive pivot"
                        for j in i + 1 .. n - 1 do
                            if buf[i * n + j] <> sentinel i j then failtestf "%s wrote the upper triangle at (%d, %d)" name i j

        testCase "an indefinite matrix: native and managed report the same leading minor" <| fun () ->
            let n = 90
            let a = symOf n (spd 5 n) |> rows
            a[40 * n + 40] <- -1.0 // minor of order 41 is indefinite
            let native = Linalg.choleskyLowerInPlace (Array.copy a) n
            let managed = Linalg.choleskyLowerInPlaceManaged (Array.copy a) n
            Expect.equal managed 41 "managed info"
            Expect.equal native 41 "native (or managed) info"

        testCase "triangular solves (native and managed) equal MathNet's LU solves" <| fun () ->
            let n, m = 203, 37
            let a = symOf n (spd 11 n) |> rows
            let l = Array.copy a
            Expect.equal (Linalg.choleskyLowerInPlace l n) 0 "info"
            let lm = lowerOf n l
            let b = normals 12 (m * n)
            // B·L⁻ᵀ: X with X·Lᵀ = B, i.e. L·Xᵀ = Bᵀ; B·L⁻¹: L ᵀ·Xᵀ = Bᵀ.
            let expectT = rows (lm.Solve(ofRows m n b |> fun x -> x.Transpose()) |> fun x -> x.Transpose())
            let expectN = rows (lm.Transpose().Solve((ofRows m n b).Transpose()).Transpose())
            for name, fT, fN in [ "dispatch", Linalg.trsmRightLowerTrans, Linalg.trsmRightLower
                                  "managed", Linalg.trsmRightLowerTransManaged, Linalg.trsmRightLowerManaged ] do
                let x = Array.copy b
                fT l n x m
                assertClose (name + " B·L⁻ᵀ") 1e-12 expectT x
                let y = Array.copy b
                fN l n y m
                assertClose (name + " B·L⁻¹") 1e-12 expectN y

        testCase "blocked Cholesky, solves and B·L (n = 700, three 256-wide Cholesky blocks, two 512-wide solve blocks) equal MathNet algebra and keep the upper triangle" <| fun () ->
            // The routed calls (the blocked routines where our product is chosen, else LAPACK/BLAS or managed code
            // whole), then the blocked routines themselves wherever AVX-512 and LAPACK/BLAS exist, whichever product
            // the routing chose. Tolerance: κ ≲ 1e2 (see the header), so the backward-stable bound is κ·n·ε = 1.6e-11.
            let routed = Linalg.choleskyLowerInPlace, Linalg.trsmRightLowerTrans, Linalg.trsmRightLower, Linalg.tryTrmmRightLower
            let blocked =
                Linalg.choleskyLowerBlocked, Linalg.trsmRightLowerTransBlocked, Linalg.trsmRightLowerBlocked,
                (fun l n b m -> Linalg.trmmRightLowerBlocked l n b m; true)
            let routes = if Gemm.available && Native.blockedReady () then [ "routed", routed; "blocked", blocked ] else [ "routed", routed ]
            for route, (cholesky, trsmT, trsm, trmm) in routes do
                let n, m = 700, 301
                let tol = 1e2 * float n * 2.220446049250313e-16
                let a = symOf n (spd 51 n) |> rows
                let sentinel i j = float (7 + i * n + j)
                let buf = Array.init (n * n) (fun idx -> let i, j = idx / n, idx % n in if j > i then sentinel i j else a[idx])
                Expect.equal (cholesky buf n) 0 (route + ": info")
                for i in 0 .. n - 1 do
                    for j in i + 1 .. n - 1 do
                        if buf[i * n + j] <> sentinel i j then failtestf "%s: wrote the upper triangle at (%d, %d)" route i j
                let lm = lowerOf n buf
                assertClose (route + ": L·Lᵀ = A") tol a (rows (lm * lm.Transpose()))
                let b = normals 52 (m * n)
                let bm = ofRows m n b
                let x = Array.copy b
                trsmT buf n x m
                assertClose (route + ": B·L⁻ᵀ") tol (rows (lm.Solve(bm.Transpose()).Transpose())) x
                let y = Array.copy b
                trsm buf n y m
                assertClose (route + ": B·L⁻¹") tol (rows (lm.Transpose().Solve(bm.Transpose()).Transpose())) y
                let z = Array.copy b
                if trmm buf n z m then assertClose (route + ": B·L") tol (rows (bm * lm)) z
                elif (Native.libraries ()).Trmm.IsSome then failtest "trmm is loaded but B·L was not computed"
                for bad in [ 0; 255; 256; 600; 699 ] do
                    let c = Array.copy a
                    c[bad * n + bad] <- -1.0
                    Expect.equal (cholesky c n) (bad + 1) (sprintf "%s: info for an indefinite minor of order %d" route (bad + 1))

        testCase "packed block: S survives the factorisation, B·S and solves match explicit MathNet algebra" <| fun () ->
            let n, m = 150, 23
            let raw = spd 21 n
            let s = symOf n raw
            for owned in [ false; true ] do
                let src = Array.copy raw
                let blk = PredictFactor.Block.Create("test block", src, n, owned, 1e-3, false)
                let ridge = 1e-3 * s.Trace() / float n
                Expect.floatClose Accuracy.veryHigh blk.Ridge ridge "relative ridge = diag_reg · mean diagonal"
                blk.Factor()
                if not owned then Expect.equal src raw "a borrowed buffer is not written"
                let b = normals 22 (m * n)
                assertClose "S entries after factoring" 1e-15 (rows s) (Array.init (n * n) (fun idx -> blk.At(idx / n, idx % n)))
                assertClose "B·S" 1e-13 (rows (ofRows m n b * s)) (blk.TimesS(b, m))
                let managed = Linalg.symmRightUpperManaged (Array.init (n * n) (fun idx -> let i, j = idx / n, idx % n in if j > i then s[i, j] else nan)) (Array.init n (fun i -> s[i, i])) n b m
                assertClose "managed B·S (never reads the lower triangle)" 1e-13 (rows (ofRows m n b * s)) managed
                let x = Array.copy b
                blk.SolveRows(x, m)
                let reg = s + ridge * Matrix<float>.Build.DenseIdentity n
                assertClose "rows ← (S + λI)⁻¹·row" 1e-12 (rows (reg.Solve((ofRows m n b).Transpose()).Transpose())) x

        testCase "eigenbasis rows diagonalise S + λI (native or managed, and managed alone)" <| fun () ->
            let n = 61
            let s = symOf n (spd 31 n)
            let blk = PredictFactor.Block.Create("test block", rows s, n, true, 1e-2, true)
            let e = PredictFactor.eigen "test block" blk
            let r = ofRows n n e.Rows
            let reg = s + 1e-2 * Matrix<float>.Build.DenseIdentity n
            assertClose "R·(S + λI)·Rᵀ = diag(λ)" 1e-12 (rows (Matrix<float>.Build.DenseOfDiagonalArray e.Values)) (rows (r * reg * r.Transpose()))
            Expect.isTrue (e.Values |> Array.pairwise |> Array.forall (fun (a, b) -> a <= b)) "ascending"
            let a = rows reg
            let w = Linalg.symmetricEigenManaged a n |> fst
            assertClose "managed eigenvalues" 1e-12 w e.Values

        testCase "an eigendecomposition in the block's own buffer keeps S, and a factor asked for before or after is right" <| fun () ->
            // dsyevr (or MathNet) uses the block's lower triangle as scratch: S must survive in the upper triangle
            // and diagonal vector, and the Cholesky factor must be rebuilt from S when asked for afterwards.
            let n, m = 97, 11
            let s = symOf n (spd 41 n)
            let reg = s + 1e-2 * Matrix<float>.Build.DenseIdentity n
            let b = normals 42 (m * n)
            let expectedSolve = rows (reg.Solve((ofRows m n b).Transpose()).Transpose())
            for factorFirst in [ false; true ] do
                let blk = PredictFactor.Block.Create("test block", rows s, n, true, 1e-2, true)
                if factorFirst then blk.Factor()
                for round in 1 .. 2 do
                    let e = PredictFactor.eigen "test block" blk
                    let r = ofRows n n e.Rows
                    assertClose (sprintf "R·Rᵀ = I (round %d)" round) 1e-12 (rows (Matrix<float>.Build.DenseIdentity n)) (rows (r * r.Transpose()))
                    assertClose (sprintf "Rᵀ·diag(λ)·R = S + λI (round %d)" round) 1e-12 (rows reg) (rows (r.Transpose() * Matrix<float>.Build.DenseOfDiagonalArray e.Values * r))
                    assertClose "S entries after the eigendecomposition" 1e-15 (rows s) (Array.init (n * n) (fun idx -> blk.At(idx / n, idx % n)))
                    assertClose "B·S after the eigendecomposition" 1e-13 (rows (ofRows m n b * s)) (blk.TimesS(b, m))
                    Expect.isFalse (blk.TryTimesL(Array.copy b, m)) "no factor is claimed while the lower triangle is scratch"
                    let x = Array.copy b
                    blk.SolveRows(x, m)
                    assertClose (sprintf "solve refactors from S (factor first: %b, round %d)" factorFirst round) 1e-12 expectedSolve x

        testCase "spectrum kept as reflectors and tridiagonal eigenvectors: B·V, P·Vᵀ and R equal MathNet's eigenbasis algebra; a factor in between makes it stale" <| fun () ->
            // V = Q·Z is never formed for B·V and P·Vᵀ (dsytrd + dstemr + dormtr on the blocks); references: MathNet's
            // symmetric EVD of S + λI, with each eigenvector's sign fixed by comparison (eigenvectors are defined up
            // to sign, so B·V is compared column by column against ±B·v_j). The eigenvalues of these Gram matrices are
            // distinct (spread over ~[0.1, 3]), so each v_j is defined up to sign; κ ≲ 1e2 as above, tolerance 1e-12.
            // 97: one block of reflectors; 300: three (128, 128, 43), first to last and last to first.
            for n, m in [ 97, 13; 300, 7 ] do
                let s = symOf n (spd 51 n)
                let reg = s + 1e-2 * Matrix<float>.Build.DenseIdentity n
                let evd = reg.Evd(Symmetricity.Symmetric)
                let vRef = evd.EigenVectors // columns, ascending eigenvalues
                let b = normals 52 (m * n)
                let p = normals 53 (m * n)
                let blk = PredictFactor.Block.Create("test block", rows s, n, true, 1e-2, true)
                let sp = PredictFactor.spectrum "test block" blk None
                assertClose "eigenvalues" 1e-12 (evd.EigenValues |> Seq.map (fun c -> c.Real) |> Seq.toArray) sp.Values
                let bv = sp.TimesV(b, m)
                // Signs: column j of B·V against column j of B·vRef.
                let bvRef = ofRows m n b * vRef
                let sign = Array.init n (fun j -> if Seq.sum (Seq.init m (fun i -> bv[i * n + j] * bvRef[i, j])) < 0.0 then -1.0 else 1.0)
                let vSigned = vRef * Matrix<float>.Build.DenseOfDiagonalArray sign
                assertClose "B·V" 1e-12 (rows (ofRows m n b * vSigned)) bv
                assertClose "P·Vᵀ" 1e-12 (rows (ofRows m n p * vSigned.Transpose())) (sp.TimesVT(p, m))
                Expect.isTrue sp.IsCurrent "current while the block's reflectors are in place"
                assertClose "S entries after the reduction" 1e-15 (rows s) (Array.init (n * n) (fun idx -> blk.At(idx / n, idx % n)))
                assertClose "B·S after the reduction" 1e-13 (rows (ofRows m n b * s)) (blk.TimesS(b, m))
                assertClose "B·V again after B·S (the diagonal put back)" 1e-12 (rows (ofRows m n b * vSigned)) (sp.TimesV(b, m))
                let x = Array.copy b
                blk.SolveRows(x, m) // refactors from S: the reflectors are gone
                assertClose "solve after the reduction" 1e-12 (rows (reg.Solve((ofRows m n b).Transpose()).Transpose())) x
                if NeuralTangents.Tridiagonal.available () then
                    Expect.isFalse sp.IsCurrent "stale once a factor overwrote the reflectors"
                    Expect.throwsT<InvalidOperationException> (fun () -> sp.TimesV(b, m) |> ignore) "a stale spectrum refuses to apply Q"
                // R formed in place (a fresh spectrum), and B·V through it.
                let sp2 = PredictFactor.spectrum "test block" blk None
                let r = sp2.Rows
                let sign2 = Array.init n (fun j -> if Seq.sum (Seq.init n (fun i -> r[j * n + i] * vRef[i, j])) < 0.0 then -1.0 else 1.0)
                let v2 = vRef * Matrix<float>.Build.DenseOfDiagonalArray sign2
                assertClose "R = Vᵀ" 1e-12 (rows (v2.Transpose())) r
                assertClose "B·V once formed" 1e-12 (rows (ofRows m n b * v2)) (sp2.TimesV(b, m))
                assertClose "P·Vᵀ once formed" 1e-12 (rows (ofRows m n p * v2.Transpose())) (sp2.TimesVT(p, m))
                Expect.isTrue sp2.IsCurrent "a formed basis does not depend on the block"

        testCase "two blocks reduced together (one OpenBLAS thread each) give the eigenbases of MathNet's EVD; the thread count comes back" <| fun () ->
            // As the test above, for Spectrum.Of from reductions made by Tridiagonal.tryRunTogether
            // (TrainSet.ReduceTogether's route); each B·V against ±B·v_j of MathNet's EVD, tolerance 1e-12 as there.
            let n, m = 300, 11
            let before = Tridiagonal.blasThreads ()
            let ss = [| symOf n (spd 61 n); symOf n (spd 63 n) |]
            let blks = ss |> Array.map (fun s -> PredictFactor.Block.Create("test block", rows s, n, true, 1e-2, true))
            let made = Array.zeroCreate<PredictFactor.Reduction> 2
            let seen = Array.zeroCreate<int option> 2
            let jobs = Array.init 2 (fun i -> fun () -> seen[i] <- Tridiagonal.blasThreads (); made[i] <- PredictFactor.reduce blks[i])
            let ran = Tridiagonal.tryRunTogether jobs
            let expected = Tridiagonal.available () && (match before with Some t -> t <= 2 | None -> false)
            Expect.equal ran expected "run together exactly with OpenBLAS' thread control and at most two OpenBLAS threads"
            Expect.equal (Tridiagonal.blasThreads ()) before "the thread count restored"
            if ran then
                Expect.equal seen [| Some 1; Some 1 |] "one OpenBLAS thread inside the jobs"
                let b = normals 65 (m * n)
                for i in 0 .. 1 do
                    let evd = (ss[i] + 1e-2 * Matrix<float>.Build.DenseIdentity n).Evd(Symmetricity.Symmetric)
                    let sp = PredictFactor.spectrum "test block" blks[i] (Some made[i])
                    assertClose "eigenvalues" 1e-12 (evd.EigenValues |> Seq.map (fun c -> c.Real) |> Seq.toArray) sp.Values
                    let bv = sp.TimesV(b, m)
                    let bvRef = ofRows m n b * evd.EigenVectors
                    let sign = Array.init n (fun j -> if Seq.sum (Seq.init m (fun r -> bv[r * n + j] * bvRef[r, j])) < 0.0 then -1.0 else 1.0)
                    assertClose "B·V" 1e-12 (rows (bvRef * Matrix<float>.Build.DenseOfDiagonalArray sign)) bv
                // A failing job: its exception comes out (the other job still finishes) and the count is restored.
                let finished = ref false
                let ex =
                    Expect.throwsC (fun () ->
                        Tridiagonal.tryRunTogether [| (fun () -> finished.Value <- true); (fun () -> invalidOp "job failed") |] |> ignore)
                        id
                Expect.equal ex.Message "job failed" "the job's own exception"
                Expect.isTrue finished.Value "the other job ran"
                Expect.equal (Tridiagonal.blasThreads ()) before "the thread count restored after a failure"
            // A section lowering the count by one, nested in another: the first's count holds until the last leaves.
            let inner =
                Tridiagonal.withBlasThreadsLess 1 (fun () ->
                    let outer = Tridiagonal.blasThreads ()
                    Tridiagonal.withBlasThreadsLess 1 (fun () -> outer, Tridiagonal.blasThreads ()))
            match before with
            | Some t -> Expect.equal inner (Some(max 1 (t - 1)), Some(max 1 (t - 1))) "one thread fewer (one at least), not two fewer when nested"
            | None -> Expect.equal inner (None, None) "no thread control: nothing to lower"
            Expect.equal (Tridiagonal.blasThreads ()) before "the thread count restored after nested sections"

        testCase "gpInference at N = 300 equals explicit LU solves to 1e-12 (NNGP, NTK ensemble, NTKGP)" <| fun () ->
            let n, m, d, k = 300, 41, 650, 3
            let x = ofRows (n + m) d (normals 41 ((n + m) * d))
            let g1 = x * x.Transpose() / float d + 0.05 * Matrix<float>.Build.DenseIdentity (n + m)
            let x2 = x.PointwiseMultiply(x) // a second, different PSD kernel for the NTK
            let g2 = x2 * x2.Transpose() / float d + 0.2 * Matrix<float>.Build.DenseIdentity (n + m)
            let blk (g: M) r0 c0 r c = g.SubMatrix(r0, r, c0, c)
            let kdd, ktd, ktt = blk g1 0 0 n n, blk g1 n 0 m n, blk g1 n n m m
            let tdd, ttd, ttt = blk g2 0 0 n n, blk g2 n 0 m n, blk g2 n n m m
            let y = ofRows n k (normals 42 (n * k))
            let t (a: M) = Tensor.create [| a.RowCount; a.ColumnCount |] (rows a)
            let reg = 1e-3
            let lam (a: M) = reg * a.Trace() / float n
            let kr = kdd + lam kdd * Matrix<float>.Build.DenseIdentity n
            let tr = tdd + lam tdd * Matrix<float>.Build.DenseIdentity n
            let p = Predict.gpInference (KernelMatrices.ofBoth (t kdd) (t tdd)) (t y) reg false [ PredictGet.Nngp; PredictGet.Ntk; PredictGet.NtkGp ]
            let r = p (Some(KernelMatrices.ofBoth (t ktd) (t ttd))) (Some(KernelMatrices.ofBoth (t ktt) (t ttt)))
            let lu (a: M) (b: M) = a.LU().Solve(b)
            let nngpCov = ktt - ktd * lu kr (ktd.Transpose())
            let term1 = lu tr (ttd.Transpose())
            let term2 = ttd * lu tr (ktd.Transpose())
            let ntkCov = ktt + term1.Transpose() * kdd * term1 - term2 - term2.Transpose()
            let ntkgpCov = ttt - ttd * lu tr (ttd.Transpose())
            assertClose "nngp mean" 1e-12 (rows (ktd * lu kr y)) r[PredictGet.Nngp].Mean.Data
            assertClose "nngp cov" 1e-12 (rows nngpCov) r[PredictGet.Nngp].Covariance.Value.Data
            assertClose "ntk mean" 1e-12 (rows (ttd * lu tr y)) r[PredictGet.Ntk].Mean.Data
            assertClose "ntk cov" 1e-12 (rows ntkCov) r[PredictGet.Ntk].Covariance.Value.Data
            assertClose "ntkgp cov" 1e-12 (rows ntkgpCov) r[PredictGet.NtkGp].Covariance.Value.Data
            // NTK alone: the NNGP is never factored, so K·T is a symmetric product rather than U·Uᵀ − λ·Tᵀ·T.
            let p2 = Predict.gpInference (KernelMatrices.ofBoth (t kdd) (t tdd)) (t y) reg false [ PredictGet.Ntk ]
            let r2 = p2 (Some(KernelMatrices.ofBoth (t ktd) (t ttd))) (Some(KernelMatrices.ofBoth (t ktt) (t ttt)))
            assertClose "ntk cov, NTK alone" 1e-12 (rows ntkCov) r2[PredictGet.Ntk].Covariance.Value.Data

        testCase "the network-owned ensemble gives the same bits as the kernel-function one (t = ∞ and finite t)" <| fun () ->
            let net = Stax.serial [ Stax.dense 64 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]
            let xTrain = randomTensor 51 70 5
            let xTest = randomTensor 52 9 5
            let y = randomTensor 53 70 2
            let a = Predict.gradientDescentMseEnsemble (KernelFn.compute net) xTrain y 1.0 1e-4 false
            let b = Predict.gradientDescentMseEnsembleOfNetwork PredictControl.None net xTrain y 1.0 1e-4 false
            for t in [ None; Some [| 0.5; 30.0 |] ] do
                let ra = a t (Some xTest) Both true
                let rb = b t (Some xTest) Both true
                for kind in [ PredictGet.Nngp; PredictGet.Ntk ] do
                    Expect.equal rb[kind].Mean.Data ra[kind].Mean.Data (sprintf "%A mean at %A" kind t)
                    Expect.equal rb[kind].Covariance.Value.Data ra[kind].Covariance.Value.Data (sprintf "%A cov at %A" kind t)

        testCase "a singular train kernel fails the same way on every call, and finite times still work" <| fun () ->
            // Two identical rows: the NNGP is exactly singular; at t = ∞ this needs a ridge.
            let kdd = Tensor.create [| 3; 3 |] [| 1.0; 1.0; 0.5; 1.0; 1.0; 0.5; 0.5; 0.5; 1.0 |]
            let y = Tensor.create [| 3; 1 |] [| 1.0; 2.0; 0.0 |]
            let ktd = Tensor.create [| 1; 3 |] [| 0.3; 0.3; 0.2 |]
            let p = Predict.gpInference (KernelMatrices.ofNngp kdd) y 0.0 false [ PredictGet.Nngp ]
            for _ in 1 .. 2 do
                let ex = throwsExactly<NeuralTangentsException> (fun () -> p (Some(KernelMatrices.ofNngp ktd)) None |> ignore)
                Expect.stringContains ex.Message "diag_reg" "advice"
                Expect.stringContains ex.Message "NNGP" "names the block"
            let ok = Predict.gpInference (KernelMatrices.ofNngp kdd) y 1e-3 false [ PredictGet.Nngp ]
            let r = ok (Some(KernelMatrices.ofNngp ktd)) None
            Expect.isTrue (Array.forall Double.IsFinite r[PredictGet.Nngp].Mean.Data) "finite with a ridge"
            let gd = Predict.gradientDescentMse kdd y 1.0 0.0 false
            let out = gd (Some [| 1.0 |]) None None (Some ktd)
            Expect.isTrue (Array.forall Double.IsFinite out.Test.Value.Data) "finite times need no factorisation"
    ]

/// Cancellation and progress of gpInferenceWith: checked between steps, reported in order.
[<Tests>]
let controlTests =
    testList "PredictControlTests" [
        testCase "gpInferenceWith: a cancelled token stops before the first factorisation; progress lists the steps" <| fun () ->
            let kdd = Tensor.create [| 2; 2 |] [| 2.0; 0.5; 0.5; 1.0 |]
            let y = Tensor.create [| 2; 1 |] [| 1.0; -1.0 |]
            let ktd = Tensor.create [| 1; 2 |] [| 0.3; 0.2 |]
            let ktt = Tensor.create [| 1; 1 |] [| 1.0 |]
            use cts = new Threading.CancellationTokenSource()
            cts.Cancel()
            let p = Predict.gpInferenceWith { Cancellation = cts.Token; Progress = None } (KernelMatrices.ofNngp kdd) y 0.0 false [ PredictGet.Nngp ]
            throwsExactly<OperationCanceledException> (fun () -> p (Some(KernelMatrices.ofNngp ktd)) None |> ignore) |> ignore
            let seen = ResizeArray<PredictProgress>()
            let progress = { new IProgress<PredictProgress> with member _.Report v = seen.Add v }
            let q = Predict.gpInferenceWith { PredictControl.None with Progress = Some progress } (KernelMatrices.ofNngp kdd) y 0.0 false [ PredictGet.Nngp ]
            q (Some(KernelMatrices.ofNngp ktd)) (Some(KernelMatrices.ofNngp ktt)) |> ignore
            Expect.equal [ for s in seen -> s.Step ] [ "NNGP train–train kernel"; "Cholesky factor of the NNGP"; "Nngp mean"; "Nngp covariance" ] "steps"
            Expect.equal [ for s in seen -> s.StepsDone ] [ 1; 2; 3; 4 ] "counts"

        // Tiled kernels differ from untiled ones by differently blocked dot products (a few ε per entry); the solves
        // of these kernels (N = 40, diag_reg 1e-4) amplify that by at most κ ≲ 1e5, hence 1e-10.
        testCase "the tiled ensemble equals the network-owned one (t = ∞ and finite t, tiles of 7 inputs)" <| fun () ->
            let net = Stax.serial [ Stax.dense 64 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]
            let xTrain = randomTensor 61 40 5
            let xTest = randomTensor 62 9 5
            let y = randomTensor 63 40 2
            let a = Predict.gradientDescentMseEnsembleOfNetwork PredictControl.None net xTrain y 1.0 1e-4 false
            let options = { BatchOptions.Default with BatchSize = Some 7 }
            let b = Predict.gradientDescentMseEnsembleOfTiledNetwork PredictControl.None options net xTrain y 1.0 1e-4 false
            for t in [ None; Some [| 0.5; 30.0 |] ] do
                let ra = a t (Some xTest) Both true
                let rb = b t (Some xTest) Both true
                for kind in [ PredictGet.Nngp; PredictGet.Ntk ] do
                    assertClose (sprintf "%A mean at %A" kind t) 1e-10 ra[kind].Mean.Data rb[kind].Mean.Data
                    assertClose (sprintf "%A cov at %A" kind t) 1e-10 ra[kind].Covariance.Value.Data rb[kind].Covariance.Value.Data

        testCase "ntkGpOfTiledNetwork equals gpInference on untiled NTKs, and reports its steps" <| fun () ->
            let net = Stax.serial [ Stax.dense 64 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]
            let xTrain = randomTensor 64 30 4
            let xTest = randomTensor 65 6 4
            let y = randomTensor 66 30 3
            let ntk x1 x2 = (KernelFn.compute net x1 x2 Ntk).Ntk.Value
            let expected =
                (Predict.gpInference (KernelMatrices.ofNtk (ntk xTrain None)) y 1e-4 false [ PredictGet.NtkGp ])
                    (Some(KernelMatrices.ofNtk (ntk xTest (Some xTrain)))) (Some(KernelMatrices.ofNtk (ntk xTest None)))
            let seen = ResizeArray<string>()
            let control = { PredictControl.None with Progress = Some { new IProgress<PredictProgress> with member _.Report v = seen.Add v.Step } }
            let p = Predict.ntkGpOfTiledNetwork control { BatchOptions.Default with BatchSize = Some 4 } net xTrain y 1e-4 false
            let g = p xTest true
            assertClose "mean" 1e-10 expected[PredictGet.NtkGp].Mean.Data g.Mean.Data
            assertClose "cov" 1e-10 expected[PredictGet.NtkGp].Covariance.Value.Data g.Covariance.Value.Data
            Expect.equal (List.ofSeq seen)
                [ "test–train kernel"; "test–test kernel"; "NTK train–train kernel"; "Cholesky factor of the NTK"; "NtkGp mean"; "NtkGp covariance" ]
                "steps"

        testCase "the tiled ensemble stops between tiles when the control's token is cancelled" <| fun () ->
            let net = Stax.serial [ Stax.dense 16 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]
            let xTrain = randomTensor 67 60 3
            let y = randomTensor 68 60 1
            use cts = new Threading.CancellationTokenSource()
            let tilesSeen = ResizeArray<TileProgress>()
            // The options carry no token: the control's stops the tiles (cancelled after the first tile is done).
            let progress = { new IProgress<TileProgress> with member _.Report v = lock tilesSeen (fun () -> tilesSeen.Add v; if v.TilesDone >= 1 then cts.Cancel()) }
            let options = { BatchOptions.Default with BatchSize = Some 3; Parallelism = Some 1; Progress = Some progress }
            let p = Predict.gradientDescentMseEnsembleOfTiledNetwork { PredictControl.None with Cancellation = cts.Token } options net xTrain y 1.0 1e-4 false
            throwsExactly<OperationCanceledException> (fun () -> p None (Some(randomTensor 69 5 3)) Both false |> ignore) |> ignore
            let last = Seq.last tilesSeen
            Expect.isLessThan last.TilesDone last.TilesTotal "stopped before the last tile"
    ]
