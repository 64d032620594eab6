"""CSC / CSR index arrays of one edge set, as the message-passing kernels read them.

Edges are stored destination-sorted (CSC): the incoming edges of destination
``i`` are the positions ``dst_ptr[i]:dst_ptr[i + 1]``. Backward passes that
sum over the *outgoing* edges of each sender use the transpose, a source-sorted
view of the same edges (CSR over senders) given by a permutation, so no kernel
needs atomics:

* ``src_perm`` [E]: edge positions sorted by sender (stable);
* ``src_ptr`` [num_src + 1]: offsets into ``src_perm`` per sender;
* ``src_dst`` [E]: ``dst[src_perm]``, the receiver of each edge in that order.

Long segments are also cut into pieces (:func:`split_segments`) for a
two-pass sum: ``dst_pieces``/``dst_groups`` for the CSC view, ``src_pieces``/
``src_groups`` for the transpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def csr_offsets(index: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Offsets ``ptr`` [num_rows + 1] int64 of a sorted row index [E] (``ptr[-1] == E``)."""
    counts = torch.bincount(index, minlength=num_rows)
    ptr = torch.zeros(num_rows + 1, dtype=torch.int64, device=index.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


#: Segments longer than this are summed in two passes (see :func:`split_segments`).
SPLIT_LENGTH = 16


def split_segments(ptr: torch.Tensor, max_len: int = SPLIT_LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut every segment of a CSR/CSC offset array into pieces of at most ``max_len`` entries.

    A segmented sum over long rows (a mesh node's ~76 grid nodes in the
    mesh2grid transpose) then runs as two short ones: partial sums over the
    pieces, then the sum of each row's pieces, so many more programs share the
    work of one row and none walks a long serial loop.

    Args:
        ptr: [N + 1] int64 offsets.
        max_len: piece length.

    Returns:
        ``(piece_ptr [V + 1], group_ptr [N + 1])``: offsets of the V pieces
        into the entries, and of each row's pieces into the pieces (empty rows
        have no piece).
    """
    lengths = ptr[1:] - ptr[:-1]  # [N]
    pieces = (lengths + max_len - 1) // max_len  # [N], 0 for empty rows
    group_ptr = torch.zeros(ptr.shape[0], dtype=torch.int64, device=ptr.device)
    torch.cumsum(pieces, 0, out=group_ptr[1:])
    n_pieces = int(group_ptr[-1])
    row = torch.repeat_interleave(torch.arange(lengths.shape[0], device=ptr.device), pieces)  # [V]
    k = torch.arange(n_pieces, device=ptr.device) - group_ptr[:-1][row]  # piece index within its row
    piece_ptr = torch.cat([ptr[:-1][row] + k * max_len, ptr[-1:]])
    return piece_ptr, group_ptr


def transpose_indices(
    src: torch.Tensor, dst: torch.Tensor, num_src: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source-sorted view of destination-sorted edges.

    Args:
        src, dst: [E] int64 sender and receiver per edge (destination-sorted).
        num_src: number of sender nodes.

    Returns:
        ``(src_perm [E], src_ptr [num_src + 1], src_dst [E])``, all int64.
    """
    src_perm = torch.sort(src, stable=True).indices  # [E]
    src_ptr = csr_offsets(src, num_src)  # [Ns + 1]
    return src_perm, src_ptr, dst.index_select(0, src_perm)


@dataclass
class Adjacency:
    """Index arrays of one destination-sorted edge set (see the module docstring).

    Build with :meth:`from_edges`. ``EdgeBuffers`` in ``weathergnn.models``
    carries the same attributes as module buffers, so either can be passed to
    :mod:`weathergnn.ops.dispatch`.
    """

    src: torch.Tensor
    dst: torch.Tensor
    dst_ptr: torch.Tensor
    src_perm: torch.Tensor
    src_ptr: torch.Tensor
    src_dst: torch.Tensor
    num_src: int
    num_dst: int
    dst_pieces: torch.Tensor | None = None
    dst_groups: torch.Tensor | None = None
    src_pieces: torch.Tensor | None = None
    src_groups: torch.Tensor | None = None

    def __post_init__(self):
        if self.dst_pieces is None:
            self.dst_pieces, self.dst_groups = split_segments(self.dst_ptr)
            self.src_pieces, self.src_groups = split_segments(self.src_ptr)

    @classmethod
    def from_edges(cls, src: torch.Tensor, dst: torch.Tensor, num_src: int, num_dst: int) -> "Adjacency":
        """Sort edges by destination (stable) and build both index views.

        Raises:
            ValueError: an index out of range or ``src``/``dst`` of different lengths.
        """
        src = torch.as_tensor(src, dtype=torch.int64)
        dst = torch.as_tensor(dst, dtype=torch.int64, device=src.device)
        if src.shape != dst.shape or src.dim() != 1:
            raise ValueError(f"src {tuple(src.shape)} and dst {tuple(dst.shape)} must be equal 1-D")
        if src.numel() and (int(src.min()) < 0 or int(src.max()) >= num_src):
            raise ValueError(f"src index out of range [0, {num_src})")
        if dst.numel() and (int(dst.min()) < 0 or int(dst.max()) >= num_dst):
            raise ValueError(f"dst index out of range [0, {num_dst})")
        order = torch.sort(dst, stable=True).indices
        src, dst = src[order], dst[order]
        src_perm, src_ptr, src_dst = transpose_indices(src, dst, num_src)
        return cls(src, dst, csr_offsets(dst, num_dst), src_perm, src_ptr, src_dst, num_src, num_dst)

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])

    def to(self, device: torch.device | str) -> "Adjacency":
        names = ("src", "dst", "dst_ptr", "src_perm", "src_ptr", "src_dst")
        pieces = ("dst_pieces", "dst_groups", "src_pieces", "src_groups")
        return Adjacency(
            *(getattr(self, n).to(device) for n in names),
            self.num_src,
            self.num_dst,
            *(getattr(self, n).to(device) for n in pieces),
        )
