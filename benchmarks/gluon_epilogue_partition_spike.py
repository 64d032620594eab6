"""Variants of the Gluon GEMM whose epilogue runs in warps of its own, against cuBLAS and the Triton kernel.

The kernel is :mod:`weathergnn.ops.triton.edge_linear_gluon` (the edge MLP's
forward gather product, ``out = e @ W1^T + b1 + p_src[src] + p_dst[dst]``),
which the model uses since this spike's d853f3f run. This script times its
launch variants on mesh2grid-like operands (3,114,720 edges, 40,962 senders,
1,038,240 receivers, width 512, bf16), bare and with the gathers, in one run
with cuBLAS's product and the Triton TMA kernel, and writes each variant's
error against float32 and its time (or its compile error) to the JSON after
every row. GPU only (Gluon has no interpreter).

    python benchmarks/gluon_epilogue_partition_spike.py --json $OUT/gluon_epilogue_partition_spike.json

How the design got here (H200, Triton 3.6; ``benchmarks/results/kernel_sweeps_h200_2026-11-21/
gluon_epilogue_partition_spike_*.json``, ``benchmarks/README.md``):

* 00ce0b6-145a6c7: two MMA warpgroups and one 4-warp epilogue; the bare
  product within 2-5% of cuBLAS, the gathers 3.74-3.84 ms against 4.35-4.43
  for the Triton kernel, bound by the epilogue. Gathering two slices ahead
  was slower.
* 7c9997c: gathers staged in shared memory with ``cp.async`` (K steps of 32
  for room): 3.99-5.40 ms, slower. ``epilogue_warps_probe.py`` showed why: a
  4-warp epilogue needs 3.4 ms on its own.
* d853f3f: ``wgmma`` instructions of 128 columns let a 16-warp kernel
  compile (one 256-column instruction needs 154 registers, more than the 128
  a 16-warp launch starts with), so the epilogue gets 8 warps and the
  products 160 registers through ``setmaxnreg``: 3.33 ms. That code, without
  the slower variants (they stay in the history at 7c9997c), is the kernel
  in :mod:`weathergnn.ops.triton.edge_linear_gluon`.
"""

from __future__ import annotations

from weathergnn.ops.triton.edge_linear_gluon import gather_linear

VARIANTS = [  # keyword arguments of gather_linear
    dict(sub_m=16, epi_warps=8, epi_regs=96, mma_n=128),  # the default: products at 160 registers
    dict(sub_m=16, epi_warps=8, epi_regs=88, mma_n=128),  # products at 168
    dict(sub_m=8, epi_warps=8, epi_regs=96, mma_n=128),
    dict(sub_m=16, epi_warps=8, epi_regs=88, mma_n=64),
    dict(sub_m=16, epi_warps=4, epi_regs=112, mma_n=256, maxnreg=168),  # the 98ad067-7c9997c kernel (12 warps)
]


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from kernel_sweep_edge_linear import gather_gemm_spike

    gather_gemm_spike(__doc__.splitlines()[0], "epilogue-partition", gather_linear, VARIANTS)


if __name__ == "__main__":
    main()
