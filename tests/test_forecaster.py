"""Forecaster: input assembly, residual update, rollout feedback, real-model smoke test."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weathergnn.graphs.types import WeatherGraphs
from weathergnn.models.forecaster import Forecaster
from weathergnn.models.graph_model import EncodeProcessDecode

from graph_fixtures import edge_set_from

B, G, C, F, S = 2, 12, 3, 2, 1
IN = 2 * C + 3 * F + S


class ConstantResidual(nn.Module):
    """Mock network returning a constant normalised residual; records its inputs."""

    def __init__(self, value):
        super().__init__()
        self.in_channels = IN
        self.value = torch.as_tensor(value, dtype=torch.float32)
        self.scale = nn.Parameter(torch.ones(()))
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x)
        return (self.value * self.scale).expand(*x.shape[:-1], C)


def stats():
    mean = torch.tensor([10.0, -2.0, 0.5])
    std = torch.tensor([2.0, 4.0, 0.25])
    diff_std = torch.tensor([0.5, 1.0, 0.1])
    return mean, std, diff_std


def make(value=0.0):
    mean, std, diff_std = stats()
    return Forecaster(ConstantResidual(value), mean, std, diff_std, n_forcings=F, n_static=S)


def test_zero_output_keeps_state():
    fc = make(0.0)
    history = torch.randn(B, 2, G, C) * 5
    nxt = fc.step(history, torch.randn(B, 3, G, F), torch.randn(G, S))
    assert nxt.shape == (B, G, C)
    torch.testing.assert_close(nxt, history[:, 1])


def test_network_inputs_layout():
    fc = make(0.0)
    mean, std, _ = stats()
    history = torch.randn(B, 2, G, C)
    forcings = torch.randn(B, 3, G, F)
    static = torch.randn(B, G, S)
    x = fc.network_inputs(history, forcings, static)
    assert x.shape == (B, G, IN)
    torch.testing.assert_close(x[..., :C], (history[:, 0] - mean) / std)
    torch.testing.assert_close(x[..., C : 2 * C], (history[:, 1] - mean) / std)
    for k in range(3):
        torch.testing.assert_close(x[..., 2 * C + k * F : 2 * C + (k + 1) * F], forcings[:, k])
    torch.testing.assert_close(x[..., -S:], static)
    # Unbatched static is broadcast.
    x2 = fc.network_inputs(history, forcings, static[0])
    torch.testing.assert_close(x2[..., -S:], static[0].expand(B, G, S))


def test_step_applies_diff_std_and_target_inverts_it():
    c = torch.tensor([1.0, -2.0, 0.5])
    fc = make(c)
    _, _, diff_std = stats()
    history = torch.randn(B, 2, G, C)
    nxt = fc.step(history, torch.randn(B, 3, G, F), torch.randn(G, S))
    torch.testing.assert_close(nxt, history[:, 1] + c * diff_std)
    torch.testing.assert_close(fc.normalised_residual_target(history, nxt), c.expand(B, G, C))


def test_rollout_feeds_back_linear_growth():
    c = torch.tensor([1.0, -2.0, 0.5])
    fc = make(c)
    _, _, diff_std = stats()
    inputs = torch.randn(B, 2, G, C)
    K = 4
    forcings = torch.arange(2 + K, dtype=torch.float32).view(1, -1, 1, 1).expand(B, -1, G, F)
    out = fc.rollout(inputs, forcings, torch.zeros(G, S), steps=K)
    assert out.shape == (B, K, G, C)
    for k in range(K):
        torch.testing.assert_close(out[:, k], inputs[:, 1] + (k + 1) * c * diff_std)
    # History shifts: step k sees (x_{k-1}, x_k) and forcings at times k, k+1, k+2.
    mean, std, _ = stats()
    seen = fc.model.inputs
    torch.testing.assert_close(seen[2][..., :C], (out[:, 0] - mean) / std)
    torch.testing.assert_close(seen[2][..., C : 2 * C], (out[:, 1] - mean) / std)
    for k in range(K):
        f = seen[k][0, 0, 2 * C : 2 * C + 3 * F].view(3, F)[:, 0]
        torch.testing.assert_close(f, torch.tensor([k, k + 1, k + 2], dtype=torch.float32))
    # Gradients flow through the whole rollout.
    out.sum().backward()
    assert fc.model.scale.grad is not None and fc.model.scale.grad != 0


def test_rollout_needs_enough_forcings():
    with pytest.raises(ValueError, match="forcing"):
        make().rollout(torch.randn(B, 2, G, C), torch.randn(B, 3, G, F), torch.zeros(G, S), steps=2)


def test_stats_are_float32_buffers_and_validated():
    fc = make()
    for name in ("mean", "std", "diff_std"):
        buf = getattr(fc, name)
        assert buf.dtype == torch.float32 and buf.shape == (C,)
        assert name in fc.state_dict()
    mean, std, diff_std = stats()
    with pytest.raises(ValueError, match="positive"):
        Forecaster(ConstantResidual(0.0), mean, std, torch.zeros(C), F, S)
    with pytest.raises(ValueError, match="input channels"):
        Forecaster(ConstantResidual(0.0), mean, std, diff_std, F + 1, S)


def tiny_graphs():
    """Grid of G nodes, 4 mesh nodes; every grid node linked to one mesh node and back."""
    gen = torch.Generator().manual_seed(0)
    m = 4

    def es(src, dst, ns, nd):
        return edge_set_from(src, dst, torch.randn(len(src), 4, generator=gen), ns, nd)

    grid = torch.arange(G)
    ring = torch.arange(m)
    return WeatherGraphs(
        grid_lat=torch.linspace(-80, 80, G, dtype=torch.float64),
        grid_lon=torch.linspace(0, 330, G, dtype=torch.float64),
        grid_features=torch.randn(G, 3, generator=gen),
        latitude_weights=torch.ones(G),
        mesh_pos=torch.randn(m, 3, generator=gen, dtype=torch.float64),
        mesh_features=torch.randn(m, 3, generator=gen),
        mesh=es(torch.cat([ring, (ring + 1) % m]), torch.cat([(ring + 1) % m, ring]), m, m),
        grid2mesh=es(grid, grid % m, G, m),
        mesh2grid=es(grid % m, grid, m, G),
        refinement=0,
        content_hash="tiny",
    )


@pytest.mark.parametrize("kind", ["interaction", "fused"])
def test_real_model_rollout_and_training_step(kind):
    torch.manual_seed(0)
    net = EncodeProcessDecode(
        tiny_graphs(), in_channels=IN, out_channels=C, latent=8, layers=1, processor=kind
    )
    mean, std, diff_std = stats()
    fc = Forecaster(net, mean, std, diff_std, F, S)
    inputs = mean + std * torch.randn(B, 2, G, C)
    targets = mean + std * torch.randn(B, 2, G, C)
    forcings, static = torch.randn(B, 4, G, F), torch.randn(G, S)
    out = fc.rollout(inputs, forcings, static, steps=2)
    assert out.shape == (B, 2, G, C) and torch.isfinite(out).all()
    pred = fc.normalised_residual(inputs, forcings[:, :3], static)
    loss = (pred - fc.normalised_residual_target(inputs, targets[:, 0])).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in fc.parameters())


@pytest.mark.parametrize("steps", [1, 3])
def test_rollout_loss_backward_equals_rollout_then_backward(steps):
    """The last step's decoder chunked with its loss == rollout, weighted MSE, backward: loss and every gradient."""
    from weathergnn.training.losses import weighted_mse
    from weathergnn.training.rollout import rollout_batch, rollout_loss_backward

    torch.manual_seed(0)
    net = EncodeProcessDecode(tiny_graphs(), in_channels=IN, out_channels=C, latent=8, layers=1,
                              mapper_chunks=(1, 3), checkpoint=True).double()
    mean, std, diff_std = stats()
    fc = Forecaster(net, mean, std, diff_std, F, S).double()
    batch = {"inputs": (mean + std * torch.randn(B, 2, G, C)).double(),
             "targets": (mean + std * torch.randn(B, steps + 1, G, C)).double(),
             "forcings": torch.randn(B, steps + 3, G, F, dtype=torch.float64),
             "static": torch.randn(G, S, dtype=torch.float64)}
    lat_w = torch.linspace(0.2, 1.8, G, dtype=torch.float64)
    ch_w, scale = torch.rand(C, dtype=torch.float64) + 0.1, diff_std.double()

    ref_loss = weighted_mse(rollout_batch(fc, batch, steps), batch["targets"][:, :steps], lat_w, ch_w, scale)
    (ref_loss * 0.5).backward()
    ref = {n: p.grad.clone() for n, p in fc.named_parameters()}
    fc.zero_grad(set_to_none=True)
    loss = rollout_loss_backward(fc, batch, steps, lat_w, ch_w, scale, "fp32", loss_scale=0.5)
    torch.testing.assert_close(loss, ref_loss.detach().float(), rtol=1e-6, atol=0)
    for n, p in fc.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], rtol=1e-9, atol=1e-12, msg=n)
