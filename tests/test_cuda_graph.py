"""training.cuda_graph: a captured training step against the same steps run eagerly.

The reference is the same model (a deep copy) and optimiser trained eagerly on
the same sequence of inputs: after every step the parameters, the loss and the
optimiser state of the replayed graph must equal the eager ones. The GPU tests
run through the device tool; on CPU only the argument checks run.
"""

from __future__ import annotations

import copy

import pytest
import torch

from weathergnn.models.graph_model import EncodeProcessDecode
from weathergnn.training.cuda_graph import CapturedStep, is_capturing

from graph_fixtures import random_graphs

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")


def test_rejects_cpu_device_and_no_warmup():
    with pytest.raises(ValueError, match="CUDA device, got device 'cpu'"):
        CapturedStep(lambda: None, "cpu")
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="warmup must be >= 1"):
            CapturedStep(lambda: None, "cuda", warmup=0)


def test_not_capturing_outside_a_capture():
    assert not is_capturing()


def _trainer(model, opt, decoder_loss: bool, amp: bool):
    """One step on (x [B, G, C_in], target [B, G, C_out]): gradients reset, loss, backward, AdamW."""

    def step(x, target):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            if decoder_loss:
                loss = model.forward_backward(
                    x, lambda y_k, lo, hi: (y_k.float() - target[:, lo:hi]).square().sum() / target.numel())
            else:
                loss = (model(x).float() - target).square().mean()
                loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    return step


# The Triton backend only: its kernels add without atomics, so eager steps are reproducible to the bit
# and the comparison can be tight; the torch backend's index_add_ on CUDA adds in a varying order, and
# AdamW's normalised update turns that into differences up to lr in a parameter with a near-zero gradient.
CASES = [
    # (processor, backend, mapper_chunks, checkpoint, decoder_loss, bf16 autocast)
    ("interaction", "triton", 2, True, True, False),
    ("interaction", "triton", 1, True, False, True),
    ("interaction", "triton", 3, False, True, False),
    ("fused", "triton", 1, True, False, False),
]


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("processor,backend,chunks,checkpoint,decoder_loss,amp", CASES)
def test_replays_equal_eager_steps(processor, backend, chunks, checkpoint, decoder_loss, amp):
    torch.manual_seed(0)
    graphs = random_graphs(num_grid=37, num_mesh=12, seed=3)
    model = EncodeProcessDecode(graphs, 5, 3, latent=24, layers=3, processor=processor, backend=backend,
                                mapper_chunks=chunks, checkpoint=checkpoint).cuda()
    twin = copy.deepcopy(model)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2, fused=True, capturable=True) for m in (model, twin)]
    eager = _trainer(model, opts[0], decoder_loss, amp)
    captured = CapturedStep(_trainer(twin, opts[1], decoder_loss, amp), "cuda", warmup=2)
    gen = torch.Generator(device="cuda").manual_seed(1)
    for t in range(7):  # 2 warm-up, 1 capture, 4 replays
        x = torch.randn(2, graphs.num_grid_nodes, 5, device="cuda", generator=gen)
        target = torch.randn(2, graphs.num_grid_nodes, 3, device="cuda", generator=gen)
        ref = eager(x, target)["loss"]
        got = captured(x, target)["loss"]
        torch.testing.assert_close(got, ref, msg=lambda m: f"loss at step {t}: {m}")
        for (name, p), q in zip(model.named_parameters(), twin.parameters()):
            torch.testing.assert_close(q, p, msg=lambda m: f"{name} after step {t}: {m}")
    assert (captured.eager_calls, captured.replays) == (2, 5)
    assert captured.capture_s is not None and captured.pool_bytes > 0
    for sa, sb in zip(opts[0].state.values(), opts[1].state.values()):
        torch.testing.assert_close(sb["exp_avg_sq"], sa["exp_avg_sq"])
        assert float(sb["step"]) == float(sa["step"]) == 7.0


@pytest.mark.gpu
@cuda
def test_other_shapes_run_eagerly_and_reset_recaptures():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 4).cuda()
    twin = copy.deepcopy(lin)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2, fused=True, capturable=True) for m in (lin, twin)]

    def make(m, opt):
        def step(x):
            opt.zero_grad(set_to_none=True)
            loss = m(x).square().mean()
            loss.backward()
            opt.step()
            return loss.detach()

        return step

    eager, captured = make(lin, opts[0]), CapturedStep(make(twin, opts[1]), "cuda", warmup=1)
    shapes = [(8, 6), (8, 6), (8, 6), (3, 6), (8, 6)]  # warm-up, capture, replay, eager (partial batch), replay
    for t, shape in enumerate(shapes):
        x = torch.randn(*shape, device="cuda")
        torch.testing.assert_close(captured(x), eager(x), msg=lambda m: f"step {t}: {m}")
        torch.testing.assert_close(twin.weight, lin.weight)
    assert (captured.eager_calls, captured.replays) == (2, 3)
    captured.reset()
    assert not captured.captured
    for t in range(3):  # warm-up, capture, replay with a new shape
        x = torch.randn(5, 6, device="cuda")
        torch.testing.assert_close(captured(x), eager(x))
    assert captured.captured and (captured.eager_calls, captured.replays) == (3, 5)
    torch.testing.assert_close(twin.weight, lin.weight)

