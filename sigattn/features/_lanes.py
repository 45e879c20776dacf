"""Fused Kaldi fbank for power-of-two FFT sizes, vectorised across frames ("lanes").

One Numba kernel takes 16 frames at a time from the waveform to the mel energies, in the core's L1 cache and
without calling out of Numba:

1. The frames' samples are transposed into a ``(shift, 16 + R)`` block (signal rows of ``shift`` samples,
   ``R = (size - 1) // shift`` extra rows; 16 x 16 register transposes), so that sample ``n`` of frames
   ``f0 .. f0 + 15`` is one contiguous row: ``block[n % shift, n // shift : n // shift + 16]``. Every later step
   works on such rows: each instruction handles 16 frames (SIMD across frames), and no step needs a transpose
   of its own.
2. Frame means, DC removal, pre-emphasis, window (float64), stored in the FFT's input order.
3. A complex FFT of ``N = padded / 2`` points (radix-4 decimation in time, one radix-2 stage when ``log2 N``
   is odd) of the frame packed as ``z[n] = x[2n] + i x[2n + 1]``; the split into the real FFT's bins; the
   power; the sparse mel sums (each bin lies in at most two triangles).

The arithmetic uses explicit 16-lane vectors (:class:`Vec`, a Numba type whose LLVM value is ``<16 x float>``
or ``<16 x double>``, and a few intrinsics on it). LLVM's auto-vectoriser did not vectorise these loops: an
accumulator of 16 lanes went through memory or was scalarised, and offsets read from tables made it gather.
The vector operations round exactly as written (no contraction into FMAs, no reassociation, whatever Numba's
``fastmath`` says), in the same order as the torch module's (:mod:`.fbank_torch`): both produce the same
spectrum bit for bit. Loads and stores take an array and an element offset and are not bounds checked (the
offsets come from tables built next to the arrays; the kernels are tested against independent references).

The intrinsics live in this file because Numba's cache watches only the file of a cached function.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from ._lanes_plan import FAST_N, LANES, lane_plan

__all__ = ["FAST_N", "LANES", "Vec", "fbank_groups", "fft_lanes", "lane_plan"]

L2 = 2 * LANES  # one complex row of the tile: 16 real parts, then 16 imaginary parts
FAST = {"contract", "reassoc", "nsz", "arcp"}  # for Numba's own scalar code; the Vec operations ignore it

# ---------------------------------------------------------------------------------------------------------
# 16-lane vectors
# ---------------------------------------------------------------------------------------------------------

WIDTH = LANES  # lanes of a Vec


class Vec(types.Type):
    """16 lanes of ``dtype`` (float32 or float64), held in SIMD registers."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"Vec({dtype}x{WIDTH})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), WIDTH))


def _float_of(ty):
    """The float dtype a ``like`` argument names: a float scalar, a Vec, or an array of floats."""
    if isinstance(ty, types.Float):
        return ty
    if isinstance(ty, Vec):
        return ty.dtype
    if isinstance(ty, types.Array) and isinstance(ty.dtype, types.Float):
        return ty.dtype
    return None


def _convert(builder, value, src, dst):
    """Float conversion of a scalar or vector LLVM value between float32 and float64."""
    if src == dst:
        return value
    vec = isinstance(value.type, ir.VectorType)
    target = ir.DoubleType() if dst == types.float64 else ir.FloatType()
    target = ir.VectorType(target, WIDTH) if vec else target
    return builder.fpext(value, target) if dst == types.float64 else builder.fptrunc(value, target)


def _vec_ptr(context, builder, arrty, arr, offset, dtype):
    data = context.make_array(arrty)(context, builder, value=arr).data
    ptr = builder.gep(data, [offset])
    return builder.bitcast(ptr, ir.PointerType(ir.VectorType(context.get_value_type(dtype), WIDTH)))


@intrinsic
def vload(typingctx, arr, offset, like):
    """``arr[offset : offset + 16]`` as a :class:`Vec` of ``like``'s float dtype (converted from arr's)."""
    if not (isinstance(arr, types.Array) and isinstance(arr.dtype, types.Float)):
        return None
    dst = _float_of(like)
    if dst is None or not isinstance(offset, types.Integer):
        return None

    def impl(context, builder, sig, args):
        ptr = _vec_ptr(context, builder, sig.args[0], args[0], args[1], arr.dtype)
        value = builder.load(ptr, align=arr.dtype.bitwidth // 8)
        return _convert(builder, value, arr.dtype, dst)

    return Vec(dst)(arr, offset, like), impl


@intrinsic
def vstore(typingctx, arr, offset, v):
    """``arr[offset : offset + 16] = v`` (converted to arr's dtype)."""
    if not (isinstance(arr, types.Array) and isinstance(arr.dtype, types.Float) and isinstance(v, Vec)):
        return None

    def impl(context, builder, sig, args):
        ptr = _vec_ptr(context, builder, sig.args[0], args[0], args[1], arr.dtype)
        builder.store(_convert(builder, args[2], v.dtype, arr.dtype), ptr, align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, offset, v), impl


@intrinsic
def vsplat(typingctx, x, like):
    """A :class:`Vec` of ``like``'s dtype with every lane ``x``."""
    dst = _float_of(like)
    if dst is None or not isinstance(x, (types.Float, types.Integer)):
        return None

    def impl(context, builder, sig, args):
        scalar = context.cast(builder, args[0], sig.args[0], dst)
        vecty = ir.VectorType(context.get_value_type(dst), WIDTH)
        one = builder.insert_element(ir.Constant(vecty, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(
            one,
            ir.Constant(vecty, ir.Undefined),
            ir.Constant(ir.VectorType(ir.IntType(32), WIDTH), [0] * WIDTH),
        )

    return Vec(dst)(x, like), impl


def _operand(context, builder, value, ty, dtype):
    """A vector operand: Vec values pass through, scalars are converted and splatted."""
    if isinstance(ty, Vec):
        return _convert(builder, value, ty.dtype, dtype)
    scalar = context.cast(builder, value, ty, dtype)
    vecty = ir.VectorType(context.get_value_type(dtype), WIDTH)
    one = builder.insert_element(ir.Constant(vecty, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(
        one, ir.Constant(vecty, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), WIDTH), [0] * WIDTH)
    )


def _result_dtype(*tys):
    vecs = [t for t in tys if isinstance(t, Vec)]
    if not vecs or not all(isinstance(t, (Vec, types.Float, types.Integer)) for t in tys):
        return None
    return vecs[0].dtype


def _binary(name, op):
    def typer(typingctx, a, b):
        dtype = _result_dtype(a, b)
        if dtype is None:
            return None

        def impl(context, builder, sig, args):
            x = _operand(context, builder, args[0], sig.args[0], dtype)
            y = _operand(context, builder, args[1], sig.args[1], dtype)
            return op(builder, x, y)

        return Vec(dtype)(a, b), impl

    typer.__name__ = name
    typer.__doc__ = f"Lane-wise {name[1:]} of two Vecs (a scalar operand is broadcast)."
    return intrinsic(typer)


def _exact(inst):
    """Mark ``inst`` with a flag of its own ("nsz": the sign of a zero result may differ, nothing else): Numba's
    fastmath pass adds its flags (reassociation, contraction) only to float instructions that have none, and
    these operations must round exactly as written, like the same operations in torch or NumPy."""
    inst.flags.append("nsz")
    return inst


vadd = _binary("vadd", lambda b, x, y: _exact(b.fadd(x, y)))
vsub = _binary("vsub", lambda b, x, y: _exact(b.fsub(x, y)))


def _product(builder, x, y):
    """``x * y``. Not fused into a following add: LLVM contracts only instructions flagged "contract" (Numba's
    fastmath pass would add the flag; :func:`_exact` keeps it out), and an FMA rounds once, so results would
    differ from ``a * b + c`` in torch or NumPy. Use :func:`vfma` where a fused operation is wanted."""
    return _exact(builder.fmul(x, y))


vmul = _binary("vmul", _product)
vmax = _binary("vmax", lambda b, x, y: b.select(b.fcmp_ordered(">", x, y), x, y))


def _vector_intrinsic(builder, name, vecty, nargs):
    """Declare (once per module) an LLVM intrinsic overloaded on a float vector type, e.g. llvm.fma.v16f32."""
    suffix = f"v{vecty.count}f{64 if isinstance(vecty.element, ir.DoubleType) else 32}"
    return cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vecty, [vecty] * nargs), f"{name}.{suffix}"
    )


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane-wise, fused (scalars are broadcast)."""
    dtype = _result_dtype(a, b, c)
    if dtype is None:
        return None

    def impl(context, builder, sig, args):
        ops = [_operand(context, builder, v, t, dtype) for v, t in zip(args, sig.args)]
        return builder.call(_vector_intrinsic(builder, "llvm.fma", ops[0].type, 3), ops)

    return Vec(dtype)(a, b, c), impl


@intrinsic
def vsqrt(typingctx, a):
    """Lane-wise square root."""
    if not isinstance(a, Vec):
        return None

    def impl(context, builder, sig, args):
        return builder.call(_vector_intrinsic(builder, "llvm.sqrt", args[0].type, 1), [args[0]])

    return a(a), impl


@intrinsic
def vget(typingctx, v, lane):
    """Lane ``lane`` of ``v`` as a scalar."""
    if not (isinstance(v, Vec) and isinstance(lane, types.Integer)):
        return None

    def impl(context, builder, sig, args):
        return builder.extract_element(
            args[0], builder.trunc(args[1], ir.IntType(32)) if args[1].type.width > 32 else args[1]
        )

    return v.dtype(v, lane), impl


@intrinsic
def transpose16(typingctx, src, src_off, src_stride, dst, dst_off, dst_stride):
    """Copy a 16 x 16 block transposed: ``dst[dst_off + c * dst_stride + r] = src[src_off + r * src_stride + c]``.

    Sixteen vector loads, four rounds of sixteen two-source shuffles (round ``h`` swaps bit ``h`` of the row
    and column indices), sixteen vector stores; values are converted to ``dst``'s dtype.
    """
    ok = all(isinstance(a, types.Array) and isinstance(a.dtype, types.Float) for a in (src, dst))
    if not ok or not all(isinstance(a, types.Integer) for a in (src_off, src_stride, dst_off, dst_stride)):
        return None

    def impl(context, builder, sig, args):
        s, so, ss, d, do, ds = args
        i64 = ir.IntType(64)
        int_args = zip((so, ss, do, ds), (sig.args[1], sig.args[2], sig.args[4], sig.args[5]))
        so, ss, do, ds = (context.cast(builder, v, t, types.int64) for v, t in int_args)
        rows = []
        for r in range(WIDTH):
            off = builder.add(so, builder.mul(ss, ir.Constant(i64, r)))
            ptr = _vec_ptr(context, builder, sig.args[0], s, off, src.dtype)
            rows.append(builder.load(ptr, align=src.dtype.bitwidth // 8))
        mask_ty = ir.VectorType(ir.IntType(32), WIDTH)
        h = WIDTH // 2
        while h:
            lo = ir.Constant(mask_ty, [lane if not lane & h else WIDTH + lane - h for lane in range(WIDTH)])
            hi = ir.Constant(mask_ty, [lane + h if not lane & h else WIDTH + lane for lane in range(WIDTH)])
            for r in range(WIDTH):
                if not r & h:
                    a, b = rows[r], rows[r + h]
                    rows[r] = builder.shuffle_vector(a, b, lo)
                    rows[r + h] = builder.shuffle_vector(a, b, hi)
            h //= 2
        for c in range(WIDTH):
            off = builder.add(do, builder.mul(ds, ir.Constant(i64, c)))
            ptr = _vec_ptr(context, builder, sig.args[3], d, off, dst.dtype)
            builder.store(
                _convert(builder, rows[c], src.dtype, dst.dtype), ptr, align=dst.dtype.bitwidth // 8
            )
        return context.get_dummy_value()

    return types.none(src, src_off, src_stride, dst, dst_off, dst_stride), impl


# ---------------------------------------------------------------------------------------------------------
# the FFT and the kernel
# ---------------------------------------------------------------------------------------------------------


@njit(fastmath=FAST)
def _r2(t, n):
    """Radix-2 stage of length-2 sub-transforms (twiddles all 1)."""
    for g in range(0, n, 2):
        b0 = g * L2
        b1 = b0 + L2
        ar = vload(t, b0, t)
        ai = vload(t, b0 + LANES, t)
        br = vload(t, b1, t)
        bi = vload(t, b1 + LANES, t)
        vstore(t, b0, vadd(ar, br))
        vstore(t, b0 + LANES, vadd(ai, bi))
        vstore(t, b1, vsub(ar, br))
        vstore(t, b1 + LANES, vsub(ai, bi))


@njit(fastmath=FAST, inline="always")
def _combine4(t, b0, b1, b2, b3, a0r, a0i, w1r, w1i, w2r, w2i, w3r, w3i):
    """The radix-4 butterfly's output rows from the input row ``a0`` and the twiddled rows ``w1, w2, w3``:
    ``X[j + s q] = (A0 + (-1)^s W2) + (-i)^s (W1 + (-1)^s W3)``, stored at offsets ``b0 .. b3``."""
    t0r = vadd(a0r, w2r)
    t0i = vadd(a0i, w2i)
    t1r = vsub(a0r, w2r)
    t1i = vsub(a0i, w2i)
    t2r = vadd(w1r, w3r)
    t2i = vadd(w1i, w3i)
    t3r = vsub(w1r, w3r)
    t3i = vsub(w1i, w3i)
    vstore(t, b0, vadd(t0r, t2r))
    vstore(t, b0 + LANES, vadd(t0i, t2i))
    vstore(t, b2, vsub(t0r, t2r))
    vstore(t, b2 + LANES, vsub(t0i, t2i))
    vstore(t, b1, vadd(t1r, t3i))
    vstore(t, b1 + LANES, vsub(t1i, t3r))
    vstore(t, b3, vsub(t1r, t3i))
    vstore(t, b3 + LANES, vadd(t1i, t3r))


@njit(fastmath=FAST)
def _r4_first(t, n):
    """Radix-4 stage of length-1 sub-transforms (twiddles all 1: no multiplications)."""
    for g in range(0, n, 4):
        b0 = g * L2
        b1 = b0 + L2
        b2 = b1 + L2
        b3 = b2 + L2
        a0r = vload(t, b0, t)
        a0i = vload(t, b0 + LANES, t)
        w1r = vload(t, b1, t)
        w1i = vload(t, b1 + LANES, t)
        w2r = vload(t, b2, t)
        w2i = vload(t, b2 + LANES, t)
        w3r = vload(t, b3, t)
        w3i = vload(t, b3 + LANES, t)
        _combine4(t, b0, b1, b2, b3, a0r, a0i, w1r, w1i, w2r, w2i, w3r, w3i)


@njit(fastmath=FAST)
def _r4(t, n, q, tw):
    """Radix-4 decimation-in-time stage combining four length-``q`` transforms into length ``4q``."""
    m = 4 * q
    for g in range(0, n, m):
        for j in range(q):
            c1 = tw[q + j, 0]
            s1 = tw[q + j, 1]
            c2 = tw[q + j, 2]
            s2 = tw[q + j, 3]
            c3 = tw[q + j, 4]
            s3 = tw[q + j, 5]
            b0 = (g + j) * L2
            b1 = b0 + q * L2
            b2 = b1 + q * L2
            b3 = b2 + q * L2
            a0r = vload(t, b0, t)
            a0i = vload(t, b0 + LANES, t)
            xr = vload(t, b1, t)
            xi = vload(t, b1 + LANES, t)
            w1r = vsub(vmul(xr, c1), vmul(xi, s1))
            w1i = vadd(vmul(xr, s1), vmul(xi, c1))
            xr = vload(t, b2, t)
            xi = vload(t, b2 + LANES, t)
            w2r = vsub(vmul(xr, c2), vmul(xi, s2))
            w2i = vadd(vmul(xr, s2), vmul(xi, c2))
            xr = vload(t, b3, t)
            xi = vload(t, b3 + LANES, t)
            w3r = vsub(vmul(xr, c3), vmul(xi, s3))
            w3i = vadd(vmul(xr, s3), vmul(xi, c3))
            _combine4(t, b0, b1, b2, b3, a0r, a0i, w1r, w1i, w2r, w2i, w3r, w3i)


@njit(fastmath=FAST)
def fft_lanes(t, n, tw):
    """In-place ``n``-point complex FFT of 16 signals side by side (``n`` a power of two, at most ``max(FAST_N)``).

    ``t`` holds row ``p`` (input index ``lane_plan(n)[0][p]``) as 16 real parts then 16 imaginary parts; the
    output rows are in natural order.
    """
    odd = False  # log2(n) odd: one radix-2 stage first
    m = n
    while m > 1:
        m >>= 1
        odd = not odd
    q = 1
    if odd:
        _r2(t, n)
        q = 2
    elif n >= 4:
        _r4_first(t, n)
        q = 4
    while q < n:
        _r4(t, n, q, tw)
        q *= 4


@njit(cache=True)
def fft_lanes_test(t, n, tw):
    """:func:`fft_lanes` called from Python (for tests)."""
    fft_lanes(t, n, tw)


@njit(cache=True, fastmath=FAST, nogil=True)
def fbank_groups(x, starts, lens, g_utt, g_f0, nframes, frame_base, first_offset, shift, size, n, noise,
                 noise_stride, dither, remove_dc, preemph, window, raw_energy, need_energy, pos, boff, tw, ptw, lo,
                 seg_start, up_w, use_power, eps, out, out_shape, bins_first, col0, energy_col, energy_min, block,
                 melbuf, t, g_begin, g_end):  # fmt: skip
    """Mel energies (not yet logged) of the 16-frame groups ``[g_begin, g_end)`` into ``out``.

    ``n`` is the complex FFT size (``padded / 2``). Group ``g`` is frames ``g_f0[g] ..`` of utterance ``g_utt[g]`` (``starts``/``lens`` in the flat ``x``).
    ``out`` is the flat output, ``out_shape`` its ``(B, T, bins)`` or ``(B, bins, T)`` (``bins_first``) shape;
    only the group's valid frames are written, the mel bins at columns ``col0 ..`` and the log energy at
    ``energy_col`` (when ``>= 0``). ``noise`` is the flat dither noise, ``size`` rows of ``noise_stride`` (global
    frame ``frame_base[u] + f`` is column ``f``). ``pos[i]`` is the tile offset of sample ``i``,
    ``boff[i] = (i % shift) * (16 + R) + i // shift`` its offset in the transposed ``block`` (a table: an
    integer division per sample costs more than the rest of the framing); ``ptw[k]`` is the split step's
    twiddle ``exp(-2 pi i k / 2n)``. ``block`` (``shift * (16 + R)`` elements of ``x``'s dtype), ``melbuf``
    (``16 * bins``) and the tile ``t`` (``32 n`` elements of ``out``'s dtype) are scratch.

    Returns the sum of every sample read (non-finite when one is NaN or Inf: the caller's input check).
    """
    zero = out.dtype.type(0.0)
    f64 = np.float64(0.0)
    extra = (size - 1) // shift
    ncol = LANES + extra
    nseg = seg_start.shape[0] - 1
    n_t = out_shape[1] if not bins_first else out_shape[2]
    n_out = out_shape[2] if not bins_first else out_shape[1]
    total = 0.0
    for g in range(g_begin, g_end):
        u = g_utt[g]
        f0 = g_f0[g]
        s0 = starts[u]
        nx = lens[u]
        nv = min(LANES, nframes[u] - f0)
        # 1. transpose signal rows f0 .. f0 + ncol - 1 into block[c * ncol + j] (reflect outside the signal)
        base = first_offset + f0 * shift
        if base >= 0 and base + ncol * shift <= nx:
            # 16 x 16 register transposes, then the columns they leave (shift % 16, and rows 16 ..) one by one
            c_full = shift - shift % LANES
            for c in range(0, c_full, LANES):
                transpose16(x, s0 + base + c, shift, block, c * ncol, ncol)
            for j in range(ncol):
                src = s0 + base + j * shift
                for c in range(c_full if j < LANES else 0, shift):
                    block[c * ncol + j] = x[src + c]
        else:
            for j in range(ncol):
                for c in range(shift):
                    i = base + j * shift + c
                    while i < 0 or i >= nx:  # Kaldi: -1 -> 0, -2 -> 1, n -> n - 1
                        i = -i - 1 if i < 0 else 2 * nx - 1 - i
                    block[c * ncol + j] = x[s0 + i]
        nzc = frame_base[u] + f0
        # 2. frame means (two accumulators hide the add latency), energies, then DC removal, pre-emphasis and
        # window in float64; sample i of the 16 frames is block[boff[i] : boff[i] + 16]
        a0 = vsplat(0.0, f64)
        a1 = vsplat(0.0, f64)
        for i in range(0, size - 1, 2):
            a0 = vadd(a0, vload(block, boff[i], f64))
            a1 = vadd(a1, vload(block, boff[i + 1], f64))
        if size % 2:
            a0 = vadd(a0, vload(block, boff[size - 1], f64))
        if dither != 0.0:
            for i in range(size):
                a1 = vfma(dither, vload(noise, i * noise_stride + nzc, f64), a1)
        acc = vadd(a0, a1)
        for lane in range(LANES):
            total += vget(acc, lane)
        mean = vmul(acc, 1.0 / size) if remove_dc else vsplat(0.0, f64)
        energy = vsplat(0.0, f64)
        if need_energy and raw_energy:
            for i in range(size):
                v = vload(block, boff[i], f64)
                if dither != 0.0:
                    v = vfma(dither, vload(noise, i * noise_stride + nzc, f64), v)
                d = vsub(v, mean)
                energy = vfma(d, d, energy)
        # ((x[i] - m) - c (x[i-1] - m)) w[i], x[-1] = x[0]: the torch module's operations in its order and without
        # fused multiply-adds, so that both round the FFT input identically (one flipped float32 rounding
        # changes a near-silent bin by ~1e-4)
        prev = vload(block, 0, f64)
        if dither != 0.0:
            prev = vfma(dither, vload(noise, nzc, f64), prev)
        prev = vsub(prev, mean)
        v0 = vmul(vsub(prev, vmul(prev, preemph)), window[0])
        vstore(t, pos[0], v0)
        if need_energy and not raw_energy:
            energy = vfma(v0, v0, energy)
        for i in range(1, size):
            cur = vload(block, boff[i], f64)
            if dither != 0.0:
                cur = vfma(dither, vload(noise, i * noise_stride + nzc, f64), cur)
            cur = vsub(cur, mean)
            v = vmul(vsub(cur, vmul(prev, preemph)), window[i])
            vstore(t, pos[i], v)
            if need_energy and not raw_energy:
                energy = vfma(v, v, energy)
            prev = cur
        zeros = vsplat(0.0, zero)
        for i in range(size, 2 * n):
            vstore(t, pos[i], zeros)
        # 3. FFT; split into the real FFT's bins; power; mel sums by segment. Z[k] = a + ib, Z[n-k] = c + id:
        # X[k] = E + w^k O with 2E = (a + c) + i(b - d), 2O = (b + d) + i(c - a), w = exp(-pi i / n), and
        # |X|^2 = |2X|^2 / 4 (exact). Kaldi's triangles share edges: between centres c_{j-1} and c_j (segment
        # j, contiguous bins) bin k falls in mel j-1 (weight up_w[1, k]) and rises in mel j (up_w[0, k]), so
        # mel[j-1] = rise(segment j-1) + fall(segment j).
        fft_lanes(t, n, tw)
        # bins k and n - k from rows k and n - k: with P = w^k O, 2X[k] = 2E + 2P and 2X[n-k] = conj(2E - 2P);
        # the power of bin k replaces row k's real parts (bin n/2 comes from the first form, Nyquist is unused)
        half = n // 2
        for k in range(half + 1):
            bk = k * L2
            bc = ((n - k) % n) * L2
            wr = ptw[k, 0]
            wi = ptw[k, 1]
            a = vload(t, bk, zero)
            b = vload(t, bk + LANES, zero)
            c = vload(t, bc, zero)
            d = vload(t, bc + LANES, zero)
            er = vadd(a, c)
            ei = vsub(b, d)
            odr = vadd(b, d)
            odi = vsub(c, a)
            pr = vsub(vmul(odr, wr), vmul(odi, wi))
            pi = vadd(vmul(odi, wr), vmul(odr, wi))
            xr = vadd(er, pr)
            xi = vadd(ei, pi)
            pw = vmul(vadd(vmul(xr, xr), vmul(xi, xi)), 0.25)
            if 0 < k < half:
                xr = vsub(er, pr)
                xi = vsub(ei, pi)
                vstore(t, bc, vmul(vadd(vmul(xr, xr), vmul(xi, xi)), 0.25))
            vstore(t, bk, pw)
        prise = vsplat(0.0, zero)
        for j in range(nseg):
            fall = vsplat(0.0, zero)
            rise = vsplat(0.0, zero)
            for kk in range(seg_start[j], seg_start[j + 1]):
                pw = vload(t, (kk + lo) * L2, zero)
                if not use_power:
                    pw = vsqrt(pw)
                fall = vfma(up_w[1, kk], pw, fall)
                rise = vfma(up_w[0, kk], pw, rise)
            if j > 0:
                mel = vmax(vadd(prise, fall), eps)
                if bins_first and nv == LANES:  # frames are contiguous in the output
                    vstore(out, (u * n_out + col0 + j - 1) * n_t + f0, mel)
                else:
                    vstore(melbuf, (j - 1) * LANES, mel)
            prise = rise
        # 4. mel rows (and the log energy) to the group's valid frames
        nb = nseg - 1
        if not bins_first:
            m_full = nb - nb % LANES if nv == LANES else 0
            row0 = (u * n_t + f0) * n_out + col0
            for m in range(0, m_full, LANES):
                transpose16(melbuf, m * LANES, LANES, out, row0 + m, n_out)
            for lane in range(nv):
                for m in range(m_full, nb):
                    out[row0 + lane * n_out + m] = melbuf[m * LANES + lane]
        elif nv < LANES:
            for m in range(nb):
                for lane in range(nv):
                    out[(u * n_out + col0 + m) * n_t + f0 + lane] = melbuf[m * LANES + lane]
        if energy_col >= 0:
            for lane in range(nv):
                e = math.log(max(vget(energy, lane), energy_min))
                f = f0 + lane
                if bins_first:
                    out[(u * n_out + energy_col) * n_t + f] = e
                else:
                    out[(u * n_t + f) * n_out + energy_col] = e
    return total
