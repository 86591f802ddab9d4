"""PDW simulator of multifunction-radar work modes (``radar.md`` §2): emitter types × modes → intercepted trains.

A sample is one intercepted pulse train of one emitter in one mode (0 VS, 1 TAS, 2 STT), returned as the
``pdw.npy`` structured array of the data contract (``toa`` <f8 s relative to the first pulse, ``rf`` <f4 MHz,
``pw`` <f4 µs, ``pa`` <f4 dBm, ``src`` <i2: −1 spurious, 0 emitter, 1 interferer) plus a JSON-safe meta dict.

Seeds (``radar.md`` §2.5). Every per-sample draw comes from ``default_rng(SeedSequence([global_seed, type_id, mode,
sample_idx]))``, so a sample regenerates byte for byte from its key. What is byte-exact: the
``pdw.npy`` pulses (PRIs are quantised, outputs are float32 of float64 sums) and every integer, string and
seed in the meta. What is not: the meta's derived floats (``pri_levels_s``, ``mean_pri_s``, …) come from
``np.exp``/``np.log`` whose last bit depends on numpy's SIMD kernels and the CPU, so a regenerated meta is
compared with :func:`meta_matches` (relative tolerance :data:`META_RTOL`), never byte for byte. Emitter types are drawn once from
``SeedSequence([global_seed, type_id])``; the id ranges keep the streams disjoint: pretraining types
``0 … 999_999``, downstream emitters ``DOWNSTREAM_BASE + e`` (unseen types), interferer types
``INTERFERER_BASE + j``, and the confusable family ``SeedSequence([global_seed, FAMILY_ID])``.

Decisions where the spec is silent (each is a constant or a flag below):

* **Type vs sample draws.** Type-level: everything in §2.1 plus, per PRI regime (``hprf`` 3–12 µs, ``tas``
  40–150 µs, ``stt_mprf`` 20–100 µs), a type-specific PRI sub-range (ratio U[1.5, 2.5], log-uniform placement),
  so emitters differ in PRF while modes keep their regimes. Per sample: the mode's law, levels, CPI lengths,
  PWs, scan phase, ESM bearing and every receiver setting.
* **Coherent modes.** All three modes hold RF inside a CPI, so ``p2p_hop`` types hop per CPI here (as
  ``cpi_hop``); the type law name is still recorded.
* **Intercept start.** The ESM records from its first detectable pulse: in VS (continuous scan) emission is
  skipped forward to the first instant the beam can reach the receiver (ML + gain ≥ S_rx − 3 dB, solved per
  sweep from the sinc² main lobe; sidelobes count as reachable at ≥ S_rx − 2 dB). Later gaps (beam away,
  sidelobes below that level) are skipped the same way, advancing the pulse index by gap / mean PRI: skipped
  pulses would be detected with probability < 2.3 % (sidelobes) or < 0.14 % (main-lobe skirts), and the exact
  length of such a gap is approximate. T_max = 2 s counts from the intercept start.
* **Stopping.** Emission stops when ``n_pulses`` emitter pulses survived detection and random misses; dead time
  is applied once at the end to the merged emitter + interferer stream (so an interferer may cost a few
  emitter pulses) — interferer pulses are real pulses, so they go through detection, dead time and misses
  before the spurious pulses (§2.4 steps 1–3, then 4). The interferer emits at most ``2 · n_pulses`` pulses
  (a burst of another emitter, not a second full train); one train emits at most 200,000 pulses.
* **Gilbert–Elliott bursts** are used by a sample with probability ``p_burst`` (0.25); bursts start with
  p_enter 0.01 per pulse, geometric length of mean U[2, 20], drawn per emission block.
* **Nominal PRIs are clipped to the mode range** before instability and rounding, so jitter/sinusoid/stagger
  never leave the regime (mode identity lives in the PRI regime).
* **TAS**: search CPIs step the beam one beamwidth at a time across the sector (``bars`` rows, raster order);
  track CPIs are at the main lobe with their own PRI and PW (search PW × U[0.3, 1]). Sliding advances on search
  pulses only. **VS** uses a bidirectional sector scan, one sweep per bar.
* **Datasets** (:func:`write_dataset`): HDF5 files with a flat ``pulses`` table + ``offsets`` (a flat table
  stays chunked and fast whatever the train lengths; no vlen compound arrays), an ``index`` table and one JSON
  string of meta per train. Pool: one file per ``types_per_file`` types (the unit of parallel writing and of
  ingest). Downstream: one file per mode; emitters ``e0…e6`` = type ids ``DOWNSTREAM_BASE + e``; the long-tail
  class→count permutation (identity unless ``permute_seed``) is shared by the three modes; train rows use
  ``sample_idx`` 0…count−1 and test rows ``TEST_INDEX_BASE + j``, so changing the train recipe never changes a
  test train. Interferers are drawn from their own 1000-type stream, not from the pool's types.
* **Antenna**: gain = sinc² main lobe (``sinc²(0.886 Δ/θ₃)``, in azimuth and elevation, dB added) inside the
  first null, sidelobe floor SLL elsewhere; the ESM sits at a uniform bearing in the sector and a uniform
  elevation over the bars.
"""

from sardata.sim.pdw.dataset import (
    LONGTAIL_COUNTS,
    TEST_INDEX_BASE,
    TEST_TOTAL,
    FileJob,
    SampleKey,
    downstream_plan,
    longtail_counts,
    pool_plan,
    run_job,
    run_jobs,
    simulate_key,
    split_test_counts,
    write_dataset,
    write_h5,
)
from sardata.sim.pdw.plan import Plan
from sardata.sim.pdw.receiver import ReceiverConfig
from sardata.sim.pdw.simulate import sample_seed, simulate
from sardata.sim.pdw.types import (
    DOWNSTREAM_BASE,
    FAMILY_ID,
    INTERFERER_BASE,
    MODE_LAWS,
    REGIMES,
    SIM_VERSION,
    EmitterType,
    downstream_type_ids,
    draw_type,
    meta_matches,
)
from sardata.sources.pdwsim import H5_FORMAT, H5_FORMAT_VERSION, INDEX_DTYPE, MODES, PDW_DTYPE

__all__ = [
    "DOWNSTREAM_BASE", "FAMILY_ID", "H5_FORMAT", "H5_FORMAT_VERSION", "INDEX_DTYPE", "INTERFERER_BASE",
    "LONGTAIL_COUNTS", "MODES", "MODE_LAWS", "PDW_DTYPE", "REGIMES", "SIM_VERSION", "TEST_INDEX_BASE", "TEST_TOTAL",
    "EmitterType", "FileJob", "Plan", "ReceiverConfig", "SampleKey", "downstream_plan", "downstream_type_ids",
    "draw_type", "longtail_counts", "meta_matches", "pool_plan", "run_job", "run_jobs", "sample_seed", "simulate",
    "simulate_key", "split_test_counts", "write_dataset", "write_h5",
]  # fmt: skip
