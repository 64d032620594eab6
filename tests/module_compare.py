"""One module on the torch backend against the triton backend: shared by the kernel and layer tests."""

from __future__ import annotations

import torch


def compare_modules(module, inputs_fn, rtol=1e-4, atol=1e-4):
    """Same module, backend torch vs triton: outputs and every parameter/input gradient."""
    results = []
    for backend in ("torch", "triton"):
        for m in module.modules():
            if hasattr(m, "backend"):
                m.backend = backend
        module.zero_grad()
        torch.manual_seed(1)  # identical inputs for both backends
        inputs = inputs_fn()
        out = module(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(0)).to(out))
        grads = [p.grad.clone() for p in module.parameters() if p.grad is not None]
        grads += [x.grad.clone() for x in inputs if isinstance(x, torch.Tensor) and x.grad is not None]
        results.append((out.detach(), grads))
    (o1, g1), (o2, g2) = results
    torch.testing.assert_close(o2, o1, rtol=rtol, atol=atol)
    assert len(g1) == len(g2) > 0
    for a, b in zip(g1, g2):
        torch.testing.assert_close(b, a, rtol=rtol, atol=atol)
