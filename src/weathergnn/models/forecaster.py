"""One-step forecaster in physical units around a normalised-residual network.

Source: Lam et al. 2023, GraphCast supplement sec. 3.1 / 4 (inputs: the two
states (t - dt, t) normalised by per-channel mean and std, plus forcings and
static fields; the network predicts the state difference normalised by the std
of the dt differences, "residual / tendency normalisation").

Per step (``C`` channels, ``F`` forcings, ``S`` static fields)::

    input = [(x_{t-dt} - mean) / std, (x_t - mean) / std,            [B, G, 2C]
             f_{t-dt}, f_t, f_{t+dt},                                [B, G, 3F]
             static]                                                 [B, G, S]
    r     = network(input)                                           [B, G, C]
    x_{t+dt} = x_t + r * diff_std

Feature order inside each group is time-major: ``[x_{t-dt}[0..C), x_t[0..C)]``
and ``[f_{t-dt}[0..F), f_t[0..F), f_{t+dt}[0..F)]``.
"""

from __future__ import annotations

import torch
from torch import nn


class Forecaster(nn.Module):
    """Wraps a grid network (e.g. :class:`EncodeProcessDecode`) into a forecast step.

    Args:
        model: maps [batch, num_grid_nodes, 2C + 3F + S] -> [batch, num_grid_nodes, C].
        mean, std, diff_std: [C] per-channel statistics (physical units; std and
            diff_std positive). Stored as float32 persistent buffers, so a
            checkpoint carries the statistics it was trained with.
        n_forcings: ``F``, forcing features per time.
        n_static: ``S``, static features.
    """

    def __init__(
        self,
        model: nn.Module,
        mean,
        std,
        diff_std,
        n_forcings: int,
        n_static: int,
    ):
        super().__init__()
        self.model = model
        for name, value in (("mean", mean), ("std", std), ("diff_std", diff_std)):
            t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
            if not torch.isfinite(t).all():
                raise ValueError(f"{name} has non-finite values")
            if name != "mean" and not (t > 0).all():
                raise ValueError(f"{name} must be positive for every channel")
            self.register_buffer(name, t)
        self.n_channels = int(self.mean.shape[0])
        if self.std.shape[0] != self.n_channels or self.diff_std.shape[0] != self.n_channels:
            raise ValueError("mean, std and diff_std must all have shape [channels]")
        self.n_forcings = int(n_forcings)
        self.n_static = int(n_static)
        expected = 2 * self.n_channels + 3 * self.n_forcings + self.n_static
        in_channels = getattr(model, "in_channels", expected)
        if in_channels != expected:
            raise ValueError(
                f"model takes {in_channels} input channels, but 2 x {self.n_channels} channels"
                f" + 3 x {self.n_forcings} forcings + {self.n_static} static = {expected}"
            )

    def network_inputs(
        self, history: torch.Tensor, forcings: torch.Tensor, static: torch.Tensor
    ) -> torch.Tensor:
        """Assemble the network input.

        Args:
            history: [batch, 2, num_grid_nodes, C] states at (t - dt, t), physical units.
            forcings: [batch, 3, num_grid_nodes, F] at (t - dt, t, t + dt).
            static: [num_grid_nodes, S] or [batch, num_grid_nodes, S].

        Returns:
            [batch, num_grid_nodes, 2C + 3F + S].
        """
        b, t, g, c = history.shape
        if t != 2 or c != self.n_channels:
            raise ValueError(f"history must be [B, 2, G, {self.n_channels}], got {tuple(history.shape)}")
        if forcings.shape[1] != 3 or forcings.shape[-1] != self.n_forcings:
            raise ValueError(
                f"forcings must be [B, 3, G, {self.n_forcings}], got {tuple(forcings.shape)}"
            )
        if static.shape[-1] != self.n_static:
            raise ValueError(f"static must have {self.n_static} features, got {tuple(static.shape)}")
        x = (history - self.mean) / self.std  # [B, 2, G, C]
        x = x.permute(0, 2, 1, 3).reshape(b, g, 2 * c)  # [B, G, 2C]
        f = forcings.permute(0, 2, 1, 3).reshape(b, g, 3 * self.n_forcings)  # [B, G, 3F]
        s = static.expand(b, g, self.n_static) if static.dim() == 2 else static  # [B, G, S]
        return torch.cat([x, f.to(x.dtype), s.to(x.dtype)], dim=-1)

    def normalised_residual(
        self, history: torch.Tensor, forcings: torch.Tensor, static: torch.Tensor
    ) -> torch.Tensor:
        """The raw network output: predicted ``(x_{t+dt} - x_t) / diff_std``, [B, G, C]."""
        return self.model(self.network_inputs(history, forcings, static))

    def normalised_residual_target(self, history: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training target of :meth:`normalised_residual`: ``(target - x_t) / diff_std``.

        Args:
            history: [batch, 2, num_grid_nodes, C]; target: [batch, num_grid_nodes, C].
        """
        return (target - history[:, -1]) / self.diff_std

    def step(
        self, history: torch.Tensor, forcings: torch.Tensor, static: torch.Tensor
    ) -> torch.Tensor:
        """One step: ``x_{t+dt} = x_t + network(inputs) * diff_std``.

        Args: as :meth:`network_inputs`.

        Returns:
            [batch, num_grid_nodes, C] next state, physical units. Under autocast
            the residual is cast to the state dtype before the update.
        """
        r = self.normalised_residual(history, forcings, static)  # [B, G, C]
        return history[:, -1] + r.to(history.dtype) * self.diff_std

    def rollout(
        self,
        inputs: torch.Tensor,
        forcings: torch.Tensor,
        static: torch.Tensor,
        steps: int,
    ) -> torch.Tensor:
        """Autoregressive forecast, each prediction fed back as the newest state.

        Args:
            inputs: [batch, 2, num_grid_nodes, C] states at (t - dt, t).
            forcings: [batch, 2 + K, num_grid_nodes, F] at t - dt ... t + K dt
                (at least ``steps + 2`` times).
            static: [num_grid_nodes, S] or [batch, num_grid_nodes, S].
            steps: K.

        Returns:
            [batch, K, num_grid_nodes, C] states at t + dt ... t + K dt.
        """
        if forcings.shape[1] < steps + 2:
            raise ValueError(
                f"rollout of {steps} steps needs {steps + 2} forcing times, got {forcings.shape[1]}"
            )
        history = inputs
        preds = []
        for k in range(steps):
            nxt = self.step(history, forcings[:, k : k + 3], static)  # [B, G, C]
            preds.append(nxt)
            history = torch.stack([history[:, 1], nxt], dim=1)  # [B, 2, G, C]
        return torch.stack(preds, dim=1)  # [B, K, G, C]
