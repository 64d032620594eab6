"""End to end: the CLI trains on demo and real data, resumes, evaluates, and reports bad options."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from weathergnn.cli.main import app
from weathergnn.config import ConfigError, load_config, named_configs

runner = CliRunner()

TINY = [
    "--set", "model.latent=16", "--set", "model.layers=2", "--set", "graph.refinement=1",
    "--set", "training.val_max_samples=2", "--set", "training.warmup_steps=2", "--no-progress",
]


def _invoke(args):
    result = runner.invoke(app, args, catch_exceptions=False)
    return result


def test_every_subcommand_has_help():
    for args in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["data", "inspect", "--help"],
                 ["data", "stats", "--help"], ["graph", "build", "--help"], ["graph", "inspect", "--help"]):
        result = _invoke(args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output


def test_named_configs_validate():
    names = named_configs()
    assert {"quickstart", "heldsuarez-5.625deg", "era5-eda-3deg", "era5-0.25deg-graphcast"} <= set(names)
    gc = load_config("era5-0.25deg-graphcast")
    assert (gc.model.latent, gc.model.layers, gc.graph.refinement) == (512, 16, 6)


def test_bad_config_option_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match="training.lr"):
        load_config("quickstart", {"training.lr": -1.0})
    with pytest.raises(ConfigError, match="model.procesor"):
        load_config("quickstart", {"model.procesor": "fused"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {processor: gcn}\n")
    with pytest.raises(ConfigError, match=str(bad)):
        load_config(str(bad))


@pytest.mark.parametrize("processor", ["interaction", "fused"])
def test_train_resume_evaluate_on_demo(tmp_path, processor):
    out = tmp_path / "run"
    common = ["--config", "quickstart", "--out", str(out), "--processor", processor,
              "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY]
    result = _invoke(["train", *common, "--epochs", "1", "--max-steps", "3"])
    assert result.exit_code == 0, result.output
    assert "BATCH" in result.output and "FORWARD" in result.output and "IO" in result.output  # the timer table
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["step"] == 3
    # --resume continues from the stored step
    result = _invoke(["train", *common, "--epochs", "2", "--max-steps", "5", "--resume"])
    assert result.exit_code == 0, result.output
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["step"] == 5
    result = _invoke(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--lead-steps", "2",
                      "--max-init-times", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "persistence" in result.output
    scores = json.loads((out / "scores-test" / "scores.json").read_text())
    assert scores["n_init"] == 3
    assert all(r["rmse_model"] >= 0 and r["rmse_persistence"] > 0 for r in scores["rows"])


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    result = _invoke(["train", "--config", "quickstart", "--out", str(tmp_path / "none"),
                      "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY, "--resume"])
    assert result.exit_code == 2
    assert "checkpoint.pt" in result.output


@pytest.mark.slow
def test_train_and_evaluate_on_real_era5_members(tmp_path, era5_dir):
    """Members 0-7 train, 8-9 are held out; the loss falls and evaluation reports persistence."""
    out = tmp_path / "eda"
    result = _invoke(["train", "--config", "era5-eda-3deg", "--out", str(out),
                      "--data", str(era5_dir / "era5_eda_zt_3deg_20170101_members.grib"),
                      "--set", f"data.cache_dir={tmp_path / 'cache'}", "--epochs", "6", "--no-progress"])
    assert result.exit_code == 0, result.output
    losses = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epoch_losses = [r["train_loss"] for r in losses if "epoch" in r]
    assert epoch_losses[-1] < epoch_losses[0]
    result = _invoke(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "geopotential_500" in result.output and "persistence" in result.output


def test_data_inspect_names_canonical_fields(era5_dir):
    result = _invoke(["data", "inspect", str(era5_dir / "era5_zt_1deg_20070101T12.grib")])
    assert result.exit_code == 0, result.output
    assert "geopotential" in result.output and "temperature" in result.output


def test_data_inspect_missing_file_is_a_clear_error(tmp_path):
    result = _invoke(["data", "inspect", str(tmp_path / "nope.nc")])
    assert result.exit_code == 2
    assert "nope.nc" in result.output


def test_graph_build_and_inspect(tmp_path):
    result = _invoke(["graph", "build", "--grid", "5.625", "--refinement", "2",
                      "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = list(tmp_path.glob("graph-*.pt"))
    assert len(files) == 1
    result = _invoke(["graph", "inspect", str(files[0])])
    assert result.exit_code == 0, result.output
    assert "162" in result.output  # mesh nodes at refinement 2


def _train_tiny(tmp_path, name: str, epochs: int, max_steps: int, *args: str, **overrides) -> dict:
    """Train the TINY quickstart model into ``tmp_path / name`` with more CLI ``args`` and ``--set key=value``
    per override (dots in keys written as ``__``); returns the checkpoint."""
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key.replace('__', '.')}={value}")]
    out = tmp_path / name
    result = _invoke(["train", "--config", "quickstart", "--out", str(out), "--epochs", str(epochs),
                      "--max-steps", str(max_steps), "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY, *sets,
                      *args])
    assert result.exit_code == 0, result.output
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)


def test_decoder_loss_backward_trains_the_same_model(tmp_path):
    """training.decoder_loss_backward: the same parameters after 3 steps of a 2-step rollout loss.

    On the CPU in float32: under bf16 autocast the two paths round differently, and AdamW's normalised
    updates turn tiny gradient differences into differences of up to 2 x lr in a parameter.
    """
    params = [
        _train_tiny(tmp_path, f"run-{fused}", 1, 3, model__mapper_chunks="[2, 3]", model__checkpoint="true",
                    training__rollout__start=2, training__rollout__end=2,
                    training__decoder_loss_backward=str(fused).lower(), training__device="cpu",
                    training__precision="fp32")["model"]
        for fused in (False, True)
    ]
    assert params[0].keys() == params[1].keys()
    for name, value in params[0].items():
        torch.testing.assert_close(params[1][name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_cuda_graph_needs_cuda_and_single_batches(tmp_path):
    with pytest.raises(ConfigError, match="grad_accumulation 1, got 2"):
        load_config("quickstart", {"training.cuda_graph": True, "training.grad_accumulation": 2})
    result = _invoke(["train", "--config", "quickstart", "--out", str(tmp_path / "run"), "--max-steps", "1",
                      "--set", f"data.cache_dir={tmp_path / 'cache'}", *TINY,
                      "--set", "training.cuda_graph=true", "--set", "training.device=cpu"])
    assert result.exit_code != 0
    assert "training.cuda_graph needs a CUDA device; training.device 'cpu' resolved to 'cpu'" in result.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
@pytest.mark.parametrize("decoder_loss", [False, True])
def test_cuda_graph_trains_the_same_model(tmp_path, decoder_loss):
    """training.cuda_graph: the same parameters and losses as eager steps, through warm-up, capture,
    replays, a new rollout length (recaptured) and partial batches (eager), in float32."""
    runs = []
    for graph in (False, True):
        state = _train_tiny(tmp_path, f"run-{graph}", 8, 14, data__train__end="2000-01-04T00", data__batch_size=5,
                            model__mapper_chunks="[2, 3]", model__checkpoint="true", model__backend="triton",
                            training__rollout__start=1, training__rollout__end=2, training__rollout__ramp_steps=8,
                            training__log_every=1, training__decoder_loss_backward=str(decoder_loss).lower(),
                            training__cuda_graph=str(graph).lower(), training__device="cuda",
                            training__precision="fp32")
        metrics = (tmp_path / f"run-{graph}" / "metrics.jsonl").read_text().splitlines()
        losses = [json.loads(line)["train_loss"] for line in metrics if "grad_norm" in json.loads(line)]
        runs.append((state, losses))
    (eager, eager_losses), (graph, graph_losses) = runs
    assert graph["step"] == eager["step"] == 14
    assert len(graph_losses) == len(eager_losses) == 14
    torch.testing.assert_close(torch.tensor(graph_losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-6)
    for name, value in eager["model"].items():
        torch.testing.assert_close(graph["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_resumes_an_eager_checkpoint(tmp_path):
    """An eager run's checkpoint (a float learning rate) resumed with training.cuda_graph: the scheduler
    still reaches the captured AdamW step (same parameters as resuming eagerly)."""
    common = dict(data__train__end="2000-01-04T00", data__batch_size=5, model__backend="triton",
                  training__device="cuda", training__precision="fp32", training__warmup_steps=3)
    _train_tiny(tmp_path, "run", 2, 4, **common)
    resumed = []
    for graph in (False, True):
        shutil.copytree(tmp_path / "run", tmp_path / f"resumed-{graph}")
        resumed.append(_train_tiny(tmp_path, f"resumed-{graph}", 8, 14, "--resume", **common,
                                   training__cuda_graph=str(graph).lower()))
    eager, graph = resumed
    assert graph["step"] == eager["step"] == 14
    for name, value in eager["model"].items():
        torch.testing.assert_close(graph["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
