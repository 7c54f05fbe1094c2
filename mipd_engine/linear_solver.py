"""Exact solution of linear compartment models, vectorised over a batch of parameter sets.

Within a segment of constant parameters the system dA/dt = K A + u(t) decouples in the eigenbasis of K
(K = V diag(λ) V⁻¹). A bolus of amount a into compartment c contributes z_k(t) = (V⁻¹)_{kc} a e^{λ_k u} to
mode k, u = t − start; a zero-order input of rate r over d hours contributes
r (V⁻¹)_{kc} e^{λ_k (u − m)} (e^{λ_k m} − 1)/λ_k with m = min(u, d). Amounts at the end of a segment carry
into the next one (in the next segment's eigenbasis), so parameters that change over time are exact too.
Steady state (NONMEM SS=1) sums the response of one interval's doses over all earlier intervals with a
geometric series per mode.

Nearly defective matrices (e.g. KA equal to CL/V) make V ill-conditioned; their diagonal is nudged by a
relative 1e-7 so that the eigenvalues separate (error of the same order, far below assay precision).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from .deadline import check_deadline
from .errors import ParameterValueError
from .model import PopulationModel
from .schedule import MAX_STEADY_STATE_INTERVALS, Pieces, Schedule

_EIGEN_GAP = 1e-7
_CLOSED_FORM_MIN_BATCH = 32
_CHUNK_ELEMENTS = 2_000_000
# From this many terms (batch × times × pieces × modes) the sorted scan beats the direct sum of exponentials.
_SCAN_MIN_ELEMENTS = 20_000
# From this many (parameter set, time) pairs the projection on the compartments sums over the modes.
_PROJECT_SUM_MIN_ELEMENTS = 50_000
# Decompositions kept by shared_decompositions(): batches of at least this many matrices, at most this many
# bytes in all (a course update keeps about 40 MB for a three-compartment model with IOV).
_SHARED_MIN_BATCH = 256
_SHARED_MAX_BYTES = 64 * 2**20
_SHARED: ContextVar[dict | None] = ContextVar("mipd_shared_decompositions", default=None)


@contextmanager
def shared_decompositions() -> Iterator[None]:
    """Within the block, a batch of rate matrices decomposed before is not decomposed again.

    A course update simulates the same posterior draws on several records (the band of the fit, the
    candidates, the sampling advice, the forecast): the segments they share give the same rate matrices, and
    their decomposition is looked up by a digest of the matrices' bytes. The arrays are the ones a fresh
    decomposition gives (see :func:`_decompose`), so results do not change. Nested blocks share one store.
    """
    if _SHARED.get() is not None:
        yield
        return
    token = _SHARED.set({"bytes": 0})
    try:
        yield
    finally:
        _SHARED.reset(token)


def rate_matrix(model: PopulationModel, values: dict[str, np.ndarray], n_batch: int) -> np.ndarray:
    """K (N, n, n) such that dA/dt = K A for the model's first-order flows."""
    n = model.n_compartments
    k = np.zeros((n_batch, n, n))
    for flow in model.linear_flows:
        rate = values[flow.rate]
        k[:, flow.source, flow.source] -= rate
        if flow.target is not None:
            k[:, flow.target, flow.source] += rate
    return k


def _phi(lam: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(e^{λ m} − 1)/λ, equal to m at λ = 0."""
    small = np.abs(lam) < 1e-300
    safe = np.where(small, 1.0, lam)
    return np.where(small, m, np.expm1(lam * m) / safe)


class Eigen:
    """Eigen-decomposition of a batch of rate matrices."""

    def __init__(self, k: np.ndarray) -> None:
        n = k.shape[-1]
        # The closed form pays off for large batches (posterior draws, virtual patients); for a handful of
        # matrices LAPACK's single call is quicker than its few dozen small array operations.
        if n == 2 and k.shape[0] >= _CLOSED_FORM_MIN_BATCH:
            with np.errstate(all="ignore"):  # extreme rates overflow: checked below, then the general path
                if self._two_by_two(k):
                    return
        self.path = "general"
        self.plain = True  # real eigenvalues, none nudged: rows decompose independently of the batch
        lam, vec = np.linalg.eig(k)
        if n > 1:
            if np.iscomplexobj(lam):
                magnitude = np.abs(lam)
                diffs = np.abs(lam[..., :, None] - lam[..., None, :])
                diffs[..., np.arange(n), np.arange(n)] = np.inf
                gap = diffs.min(axis=(-1, -2))
            else:  # the usual case: real eigenvalues, the smallest gap is between neighbours once sorted
                magnitude = np.abs(lam)
                gap = np.diff(np.sort(lam, axis=-1), axis=-1).min(axis=-1)
            bad = gap < _EIGEN_GAP * np.maximum(magnitude.max(axis=-1), 1e-12)
            if bad.any():
                self.plain = False
                nudged = k[bad].copy()
                factors = 1.0 + 1e-7 * np.arange(1, n + 1)
                nudged[..., np.arange(n), np.arange(n)] *= factors
                lam_b, vec_b = np.linalg.eig(nudged)
                if np.iscomplexobj(lam_b) and not np.iscomplexobj(lam):
                    lam, vec = lam.astype(complex), vec.astype(complex)
                lam[bad], vec[bad] = lam_b, vec_b
        if np.iscomplexobj(lam) and np.all(np.abs(lam.imag) <= 1e-12 * np.maximum(np.abs(lam.real), 1e-300)):
            lam, vec = lam.real, vec.real
        self.plain = self.plain and not np.iscomplexobj(lam)
        self.lam = lam  # (N, n)
        self.vec = vec  # (N, n, n): columns are eigenvectors
        self.inv = np.linalg.inv(vec)  # (N, n, n)

    def rows(self, rows: slice) -> Eigen:
        """The decomposition of a slice of the batch."""
        sub = Eigen.__new__(Eigen)
        sub.lam, sub.vec, sub.inv = self.lam[rows], self.vec[rows], self.inv[rows]
        sub.path, sub.plain = self.path, self.plain
        return sub

    def _two_by_two(self, k: np.ndarray) -> bool:
        """Closed form for batches of 2x2 matrices (one compartment with a depot, two compartments IV).
        False (use the general path) when the eigenvalues are complex or too close, or an eigenvector cannot
        be formed."""
        a, b, c, d = k[:, 0, 0], k[:, 0, 1], k[:, 1, 0], k[:, 1, 1]
        half_trace = 0.5 * (a + d)
        discriminant = (0.5 * (a - d)) ** 2 + b * c
        if not np.all(np.isfinite(discriminant)) or discriminant.min() <= 0:
            return False
        root = np.sqrt(discriminant)
        lam = np.stack((half_trace - root, half_trace + root), axis=-1)
        scale = np.maximum(np.abs(lam).max(axis=-1), 1e-12)
        if (2 * root < _EIGEN_GAP * scale).any():
            return False
        # Eigenvector of λ: (b, λ − a) when b ≠ 0, else (λ − d, c) when c ≠ 0, else a coordinate vector.
        vec = np.empty_like(k)
        for column in (0, 1):
            value = lam[:, column]
            use_b = np.abs(b) > 0
            use_c = ~use_b & (np.abs(c) > 0)
            diagonal = ~use_b & ~use_c
            x = np.where(use_b, b, np.where(use_c, value - d, 0.0))
            y = np.where(use_b, value - a, np.where(use_c, c, 0.0))
            if diagonal.any():  # diagonal matrix: eigenvalue order decides the coordinate vector
                matches_a = np.abs(value - a) <= np.abs(value - d)
                x = np.where(diagonal, matches_a.astype(float), x)
                y = np.where(diagonal, (~matches_a).astype(float), y)
            vec[:, 0, column], vec[:, 1, column] = x, y
        det = vec[:, 0, 0] * vec[:, 1, 1] - vec[:, 0, 1] * vec[:, 1, 0]
        if not (np.all(np.abs(det) > 0) and np.all(np.isfinite(det)) and np.all(np.isfinite(vec))):
            return False
        inv = np.empty_like(vec)
        inv[:, 0, 0], inv[:, 1, 1] = vec[:, 1, 1] / det, vec[:, 0, 0] / det
        inv[:, 0, 1], inv[:, 1, 0] = -vec[:, 0, 1] / det, -vec[:, 1, 0] / det
        self.lam, self.vec, self.inv = lam, vec, inv
        self.path, self.plain = "closed form", True
        return True


def _decompose(blocks: list[np.ndarray]) -> list[Eigen]:
    """The decomposition of each block of rate matrices, as ``Eigen`` of their concatenation gives it.

    Inside :func:`shared_decompositions`, blocks decomposed before are looked up and only the others are
    decomposed (together). Every matrix's eigenvalues, eigenvectors and inverse are independent of the other
    matrices of a batch unless the batch takes a batch-wide decision (the 2x2 closed form or LAPACK, complex
    or real arrays, nudged eigenvalues): only "plain" decompositions are kept, and found and new ones are
    combined only when they took the same way; otherwise the concatenation is decomposed as before.
    """
    store = _SHARED.get()
    n_batch = blocks[0].shape[0]

    def whole(parts: list[np.ndarray]) -> list[Eigen]:
        eigen = Eigen(np.concatenate(parts) if len(parts) > 1 else parts[0])
        return [eigen.rows(slice(u * n_batch, (u + 1) * n_batch)) for u in range(len(parts))]

    if store is None or n_batch < _SHARED_MIN_BATCH:
        return whole(blocks)
    # SHA-256 runs in hardware on current x86 and ARM CPUs: about twice as fast as BLAKE2b on these matrices.
    keys = [(k.shape, hashlib.sha256(np.ascontiguousarray(k).tobytes()).digest()) for k in blocks]
    found: list[Eigen | None] = [store.get(key) for key in keys]
    missing = [u for u, eigen in enumerate(found) if eigen is None]
    if not missing:
        return found  # type: ignore[return-value]
    new = whole([blocks[u] for u in missing])
    known = {e.path for e in found if e is not None}
    if len(missing) < len(blocks) and not (new[0].plain and known == {new[0].path}):
        return whole(blocks)  # rare: the blocks would not decompose alike one by one
    if new[0].plain:
        size = sum(a.nbytes for e in new for a in (e.lam, e.vec, e.inv))
        if store["bytes"] + size <= _SHARED_MAX_BYTES:
            store["bytes"] += size
            for u, eigen in zip(missing, new, strict=True):
                for array in (eigen.lam, eigen.vec, eigen.inv):
                    array.setflags(write=False)  # shared: a write in place would change other results
                store[keys[u]] = eigen
    for u, eigen in zip(missing, new, strict=True):
        found[u] = eigen
    return found  # type: ignore[return-value]


def _piece_terms(
    eigen: Eigen,
    times_h: np.ndarray,
    start_h: np.ndarray,
    amount: np.ndarray,
    duration_h: np.ndarray,
    compartment: np.ndarray,
    active: np.ndarray | None,
    initial: np.ndarray | None = None,
    initial_h: float = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Modal amounts (N, T, n) at ``times_h`` (T,) from pieces (N, P), masked by ``active`` if given.

    ``initial``: modal amounts (N, n) at ``initial_h`` (the start of a segment, before every time), which
    decay over the times as well (folded into the sorted scan: one exponential per time and mode for both).
    ``out``: an (N, T, n) array to write them into (a chunk of a larger batch), returned.
    """
    lam = eigen.lam[:, None, :]  # (N, 1, n)
    # Modal amount each piece delivers in total: (N, P, n).
    weight = amount if active is None else np.where(active, amount, 0.0)
    delivered = np.swapaxes(eigen.inv[:, :, compartment], 1, 2) * weight[:, :, None]
    is_infusion = duration_h > 0
    if np.any(is_infusion):
        # Once an infusion has ended it decays like a bolus of expm1(λd)/(λd) given at its end.
        d = np.where(is_infusion, duration_h, 1.0)[:, :, None]
        factor = np.where(is_infusion[:, :, None], _phi(lam, d) / d, 1.0)
        delivered = delivered * factor
        end = start_h + np.where(is_infusion, duration_h, 0.0)
    else:
        end = start_h
    n_batch, n_pieces = end.shape
    n_terms = n_pieces + (initial is not None)
    if n_terms > 1 and n_batch * times_h.size * n_terms * lam.shape[-1] >= _SCAN_MIN_ELEMENTS:
        scan_end, scan_delivered = end, delivered
        if initial is not None:  # the carried amounts as a piece ending at the segment start
            scan_end = np.concatenate((np.full((n_batch, 1), initial_h), end), axis=1)
            scan_delivered = np.concatenate((initial[:, None, :], delivered), axis=1)
        modal = _scan_finished(eigen.lam, times_h, scan_end, scan_delivered, out=out)
        initial = None
    else:
        u = times_h[None, :, None] - end[:, None, :]  # (N, T, P): time since the piece ended
        finished = u > 0  # a level drawn at the time of a bolus is a pre-dose level
        # The same layout as before for the sum over the pieces (its order of additions depends on it).
        terms = np.ascontiguousarray(_decay(eigen.lam, np.where(finished, u, 0.0)))
        terms *= finished[..., None]
        same_type = out is not None and out.dtype == np.result_type(terms, delivered)
        modal = np.einsum("ntpk,npk->ntk", terms, delivered, out=out if same_type else None)
    if np.any(is_infusion):
        # Infusions still running at an evaluation time (started before it, not ended): the part delivered so
        # far. Only infusion columns, and differences only where running (few entries in large batches).
        columns = np.nonzero(is_infusion.any(axis=0))[0]
        if _shared_over_batch(start_h[:, columns], end[:, columns], is_infusion[:, columns], active, columns):
            _add_running_shared(
                modal, eigen, times_h, start_h, amount, duration_h, end, compartment, columns, active
            )
        else:
            _add_running(
                modal, eigen, times_h, start_h, amount, duration_h, end, compartment, columns, active
            )
    if initial is not None:  # added last, as the segment's carried amounts always were
        carried = np.exp(lam * (times_h - initial_h)[None, :, None])
        carried *= initial[:, None, :]
        modal = np.add(modal, carried, out=modal if modal.dtype == carried.dtype else None)
    if out is not None and modal is not out:
        out[...] = modal
        return out
    return modal


def _add_running(modal, eigen, times_h, start_h, amount, duration_h, end, compartment, columns, active):
    """The part delivered so far of infusions running at an evaluation time (started before it, not ended);
    differences only where running (few entries in large batches)."""
    is_infusion = duration_h > 0
    running = (times_h[None, :, None] > start_h[:, None, columns]) & (
        times_h[None, :, None] <= end[:, None, columns]
    )
    running &= is_infusion[:, None, columns]
    if active is not None:
        running &= active[:, None, columns]
    if np.any(running):
        n_idx, t_idx, c_idx = np.nonzero(running)
        p_idx = columns[c_idx]
        lam_r = eigen.lam[n_idx]  # (R, n)
        rate = amount[n_idx, p_idx] / duration_h[n_idx, p_idx]
        coef = eigen.inv[n_idx, :, compartment[p_idx]]  # (R, n)
        since_start = times_h[t_idx] - start_h[n_idx, p_idx]
        partial = coef * rate[:, None] * _phi(lam_r, since_start[:, None])
        np.add.at(modal, (n_idx, t_idx), partial)


def _shared_over_batch(start_h, end_h, is_infusion, active, columns) -> bool:
    """True when every parameter set has the same infusion times (no random effect on lag or duration)."""
    same = (
        np.all(start_h == start_h[:1])
        and np.all(end_h == end_h[:1])
        and np.all(is_infusion == is_infusion[:1])
    )
    return bool(same and (active is None or np.all(active[:, columns] == active[:1, columns])))


def _add_running_shared(
    modal, eigen, times_h, start_h, amount, duration_h, end, compartment, columns, active
):
    """The part delivered so far of infusions running at an evaluation time, when their times are shared.

    The running (time, infusion) pairs are the same for the whole batch: one (N, R, n) block per infusion
    instead of an index over (N, T, P).
    """
    running = (times_h[:, None] > start_h[0, columns][None, :]) & (
        times_h[:, None] <= end[0, columns][None, :]
    )
    running &= (duration_h[0, columns] > 0)[None, :]
    if active is not None:
        running &= active[0, columns][None, :]
    for c in np.nonzero(running.any(axis=0))[0]:
        p = columns[c]
        t_idx = np.nonzero(running[:, c])[0]
        rate = amount[:, p] / duration_h[:, p]  # (N,)
        coef = eigen.inv[:, :, compartment[p]]  # (N, n)
        since_start = times_h[t_idx] - start_h[0, p]  # (R,)
        partial = _phi_over_times(eigen.lam, since_start)
        partial *= (coef * rate[:, None])[:, None, :]
        where: np.ndarray | slice = t_idx
        if t_idx[-1] - t_idx[0] + 1 == t_idx.size:  # the usual: consecutive times, a view instead of an index
            where = slice(int(t_idx[0]), int(t_idx[-1]) + 1)
        modal[:, where] += partial


def _phi_over_times(lam: np.ndarray, since_h: np.ndarray) -> np.ndarray:
    """:func:`_phi` of λ (N, n) over times (R,) as an (N, R, n) view, computed with the modes outermost.

    The same products, ``expm1`` and quotients as ``_phi(lam[:, None, :], since_h[None, :, None])``, element
    by element (see :func:`_decay` for why the layout matters).
    """
    small = np.abs(lam) < 1e-300
    safe = np.where(small, 1.0, lam)
    out = lam[:, :, None] * since_h[None, None, :]  # (N, n, R)
    np.expm1(out, out=out)
    out /= safe[:, :, None]
    if small.any():
        out = np.where(small[:, :, None], np.broadcast_to(since_h, out.shape), out)
    return np.moveaxis(out, 1, -1)


def _decay(lam: np.ndarray, since_h: np.ndarray) -> np.ndarray:
    """e^{λ_k · since} as an (N, ..., n) view, for λ (N, n) and times ``since_h`` (N, ...).

    Computed with the modes outermost: a broadcast product whose last axis is the few modes runs in short
    inner loops, several times slower; the values (products, then exponentials) are the same.
    """
    n_batch, n_modes = lam.shape
    out = lam.reshape((n_batch, n_modes) + (1,) * (since_h.ndim - 1)) * since_h[:, None]
    np.exp(out, out=out)
    return np.moveaxis(out, 1, -1)


def _scan_finished(
    lam: np.ndarray,
    times_h: np.ndarray,
    end: np.ndarray,
    delivered: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Σ over finished pieces of delivered·e^{λ(t − end)}, (N, T, n), with one exponential per time and mode.

    With the pieces sorted by end time, S_i (the modal amount just after the i-th end) follows
    S_i = S_{i−1}·e^{λ(e_i − e_{i−1})} + d_i, every factor ≤ 1 so nothing overflows; a time t takes the last
    S_i with e_i < t, decayed over t − e_i. For posterior draws over a time grid this replaces the N·T·P
    exponentials of the direct sum by N·T.
    """
    n_batch, n_pieces = end.shape
    order = np.argsort(end, axis=1, kind="stable")
    end_sorted = np.take_along_axis(end, order, axis=1)
    delivered_sorted = np.take_along_axis(delivered, order[:, :, None], axis=1)
    decay = np.exp(lam[:, None, :] * np.diff(end_sorted, axis=1)[:, :, None])  # (N, P − 1, n)
    partial = np.empty(delivered_sorted.shape, dtype=np.result_type(decay, delivered_sorted))
    partial[:, 0] = delivered_sorted[:, 0]
    for i in range(1, n_pieces):
        partial[:, i] = partial[:, i - 1] * decay[:, i - 1] + delivered_sorted[:, i]
    if out is not None and out.dtype != partial.dtype:
        out = None  # the caller copies
    # (N, T): pieces ended strictly before t (a level drawn at the time of a bolus is a pre-dose level).
    if np.all(end_sorted == end_sorted[:1]):  # usual: no random effect on lag or duration
        # The same piece for every parameter set at a time: gather along time only (no (N, T) index).
        count_t = np.searchsorted(end_sorted[0], times_h, side="left")
        seen_t = count_t > 0
        last_t = np.maximum(count_t - 1, 0)
        since_t = np.where(seen_t, times_h - end_sorted[0, last_t], 0.0)
        modal = np.take(partial, last_t, axis=1, out=out)
        modal *= _decay(lam, np.broadcast_to(since_t, (n_batch, since_t.size)))
        if not seen_t.all():
            modal[:, ~seen_t] = 0.0
        return modal
    count = (times_h[None, :, None] > end_sorted[:, None, :]).sum(axis=2)
    seen = count > 0
    last = np.maximum(count - 1, 0)
    rows = np.arange(n_batch)[:, None]
    since = np.where(seen, times_h[None, :] - end_sorted[rows, last], 0.0)
    modal = np.multiply(partial[rows, last], _decay(lam, since), out=out)
    modal *= seen[:, :, None]
    return modal


def _steady_state_modal(eigen: Eigen, pieces: Pieces, selected: np.ndarray, interval_h: float) -> np.ndarray:
    """Modal pre-dose amounts (N, n) at steady state for the pieces ``selected`` given every ``interval_h``.

    Sum over n >= 1 of the single-interval response at n·tau: the first terms directly until every input has
    ended, the rest as a geometric series per mode.
    """
    start = pieces.start_h[:, selected] - pieces.administered_h[selected]  # lag relative to administration
    duration = pieces.duration_h[:, selected]
    amount = pieces.amount_mg[:, selected]
    compartment = pieces.compartment[selected]
    active = np.ones_like(amount, dtype=bool)
    end = float(np.max(start + duration)) if start.size else 0.0
    n_direct = max(1, int(np.ceil(end / interval_h - 1e-12)))
    if n_direct > MAX_STEADY_STATE_INTERVALS:
        raise ParameterValueError(
            f"steady state: inputs last more than {MAX_STEADY_STATE_INTERVALS} dosing intervals"
        )
    lam = eigen.lam
    decay = np.exp(lam * interval_h)
    if np.any(np.abs(1.0 - decay) < 1e-12):
        raise ParameterValueError("steady state does not exist: a compartment has no elimination")
    times = interval_h * np.arange(1, n_direct + 1, dtype=float)
    z = _piece_terms(eigen, times, start, amount, duration, compartment, active)  # (N, n_direct, n)
    direct = z[:, :-1, :].sum(axis=1)
    tail = z[:, -1, :] / (1.0 - decay)
    return direct + tail


def simulate_linear(
    model: PopulationModel,
    schedule: Schedule,
    segment_values: list[dict[str, np.ndarray]],
    pieces: Pieces,
    times_h: np.ndarray,
    compartments: np.ndarray,
) -> np.ndarray:
    """Amounts (N, T, C) in ``compartments`` at ``times_h`` (any order), exact for linear models."""
    n_batch = pieces.start_h.shape[0]
    times_h = np.asarray(times_h, dtype=float)
    out = np.zeros((n_batch, times_h.size, compartments.size))
    if times_h.size == 0:
        return out
    time_segment = schedule.segment_of_time(times_h)
    # Segments after the last requested time cannot matter (the next one may: a steady-state dose starting
    # exactly at the last time sets the trough seen at that time).
    n_segments = min(len(schedule.segments), int(time_segment.max()) + 2)
    if n_segments == 1:
        # Constant parameters and no reset: plain superposition, no clipping (the inner loop of estimation).
        (eigen,) = _decompose([rate_matrix(model, segment_values[0], n_batch)])
        modal = _chunked_terms(
            eigen, times_h, pieces.start_h, pieces.amount_mg, pieces.duration_h, pieces.compartment, None
        )
        _project(modal, eigen.vec, compartments, out, None)
        return out
    boundaries = np.concatenate(([-np.inf], schedule.boundaries_h, [np.inf]))
    state = None  # compartment amounts (N, n) at the start of the current segment
    end_piece = pieces.start_h + pieces.duration_h
    last_reset = -np.inf
    is_bolus = pieces.duration_h <= 0
    rate = np.where(is_bolus, 0.0, pieces.amount_mg / np.where(is_bolus, 1.0, pieces.duration_h))
    # Segments with the same parameters share a matrix; all distinct matrices are decomposed in one batch.
    first: dict[int, int] = {}  # id of a segment's values -> index of its distinct matrix
    distinct: list[dict[str, np.ndarray]] = []
    for values in segment_values[:n_segments]:
        if id(values) not in first:
            first[id(values)] = len(distinct)
            distinct.append(values)
    eigens = _decompose([rate_matrix(model, values, n_batch) for values in distinct])
    for j in range(n_segments):
        check_deadline()  # a long record has many segments, each a batch of piece terms
        lo, hi = boundaries[j], boundaries[j + 1]
        segment = schedule.segments[j]
        eigen = eigens[first[id(segment_values[j])]]
        if segment.reset:
            last_reset = lo
            state = None
        # Pieces overlapping this segment, clipped to it; inputs administered before a reset are dropped.
        clip_start = np.maximum(pieces.start_h, lo)
        active = np.where(
            is_bolus,
            (pieces.start_h >= lo) & (pieces.start_h < hi),
            (np.minimum(end_piece, hi) > clip_start),
        )
        active &= pieces.administered_h[None, :] >= last_reset
        clip_duration = np.where(is_bolus, 0.0, np.minimum(end_piece, hi) - clip_start)
        clip_amount = np.where(is_bolus, pieces.amount_mg, rate * clip_duration)
        if segment.reset:
            ss = (pieces.administered_h == lo) & ~np.isnan(pieces.steady_state_interval_h)
            if np.any(ss):
                modal = np.zeros_like(eigen.lam)
                for interval in np.unique(pieces.steady_state_interval_h[ss]):
                    selected = ss & (pieces.steady_state_interval_h == interval)
                    modal = modal + _steady_state_modal(eigen, pieces, selected, float(interval))
                state = np.real(np.einsum("nij,nj->ni", eigen.vec, modal))
                # A level drawn at the steady-state dose time is the steady-state trough.
                at_dose = np.nonzero(times_h == lo)[0]
                if at_dose.size:
                    out[:, at_dose, :] = state[:, None, compartments]
        in_segment = np.nonzero(time_segment == j)[0]
        eval_times = times_h[in_segment]
        need_end = j + 1 < n_segments
        if need_end:
            eval_times = np.concatenate((eval_times, [hi]))
        if eval_times.size == 0:
            continue
        any_active = np.any(active, axis=0)
        modal = _chunked_terms(
            eigen,
            eval_times,
            clip_start[:, any_active],
            clip_amount[:, any_active],
            clip_duration[:, any_active],
            pieces.compartment[any_active],
            active[:, any_active],
            initial=None if state is None else np.einsum("nij,nj->ni", eigen.inv, state),
            initial_h=float(lo),
        )
        if in_segment.size:
            _project(modal[:, : in_segment.size, :], eigen.vec, compartments, out, in_segment)
        if need_end:
            state = np.real(np.einsum("nij,nj->ni", eigen.vec, modal[:, -1, :]))
    return out


def _project(
    modal: np.ndarray,
    vec: np.ndarray,
    compartments: np.ndarray,
    out: np.ndarray,
    times: np.ndarray | None,
) -> None:
    """out[:, times, c] = real(Σ_k modal[:, :, k] · vec[:, c, k]) for each requested compartment c.

    A sum over the few modes, one (N, T) pass each: a batched matmul of (T, n) by (n, C) matrices costs a
    call per parameter set. Small batches (the fits' objective calls) keep the matmul, whose rounding the
    estimates were validated with.
    """
    n_modes = modal.shape[-1]
    if modal.shape[0] * modal.shape[1] < _PROJECT_SUM_MIN_ELEMENTS:
        amounts = np.real(modal @ np.swapaxes(vec[:, compartments, :], 1, 2))  # (N, T, C)
        if times is None:
            out[...] = amounts
        else:
            out[:, times, :] = amounts
        return
    where: np.ndarray | slice = slice(None) if times is None else times
    if times is not None and times.size and times[-1] - times[0] + 1 == times.size:
        if np.all(np.diff(times) == 1):  # the usual: a segment's times in order, a view instead of an index
            where = slice(int(times[0]), int(times[-1]) + 1)
    for column, compartment in enumerate(compartments):
        weights = vec[:, compartment, :]  # (N, n)
        if np.iscomplexobj(modal) or np.iscomplexobj(vec):
            amount = modal[:, :, 0] * weights[:, None, 0]
            for k in range(1, n_modes):
                amount += modal[:, :, k] * weights[:, None, k]
            out[:, where, column] = np.real(amount)
            continue
        # Real modes: the same products and sums, written straight into the output (no copy, no index).
        if isinstance(where, slice):
            target = out[:, where, column]  # a view
            np.multiply(modal[:, :, 0], weights[:, None, 0], out=target)
            for k in range(1, n_modes):
                target += modal[:, :, k] * weights[:, None, k]
            continue
        amount = modal[:, :, 0] * weights[:, None, 0]
        for k in range(1, n_modes):
            amount += modal[:, :, k] * weights[:, None, k]
        out[:, where, column] = amount


def _chunked_terms(
    eigen: Eigen, times, start, amount, duration, compartment, active, initial=None, initial_h=0.0
) -> np.ndarray:
    n_batch, n_pieces = start.shape
    n_modes = eigen.lam.shape[1]
    if n_pieces == 0 and initial is None:
        return np.zeros((n_batch, times.size, n_modes), dtype=eigen.lam.dtype)
    per_row = max(1, times.size * (n_pieces + 1) * n_modes)
    chunk = max(1, _CHUNK_ELEMENTS // per_row)
    if chunk >= n_batch:
        return _piece_terms(eigen, times, start, amount, duration, compartment, active, initial, initial_h)
    result = None  # each chunk is written into its rows (no concatenation of the parts)
    for lo in range(0, n_batch, chunk):
        check_deadline()
        sl = slice(lo, lo + chunk)
        part = _piece_terms(
            eigen.rows(sl),
            times,
            start[sl],
            amount[sl],
            duration[sl],
            compartment,
            None if active is None else active[sl],
            None if initial is None else initial[sl],
            initial_h,
            out=None if result is None else result[sl],
        )
        if result is None:
            result = np.empty((n_batch, *part.shape[1:]), dtype=part.dtype)
            result[sl] = part
    assert result is not None
    return result
