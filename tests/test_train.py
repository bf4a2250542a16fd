"""The training loop: accuracy, privacy accounting, determinism, physical batching, arithmetic, evaluation."""

import numpy as np
import pytest
import torch
from test_curvature import MemoryLimited

from memcurv.data.loading import load_dataset
from memcurv.estimators.privacy import calibrate_noise
from memcurv.settings import BF16_MODES, CHANNELS_LAST_MODES, TrainSettings
from memcurv.training.models import build_model
from memcurv.training.train import (PrivacySettings, dp_schedule, evaluate, lr_scheduler, make_optimizer, train,
                                    training_precision)

DP = TrainSettings(epochs=8, batch_size=128, optimizer="sgd", lr=2.0, momentum=0.0)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _model(ds, seed=0):
    torch.manual_seed(seed)
    return build_model("small_cnn", ds.input_shape, ds.num_classes)


def _dp_train(ds, eps, seed=0, settings=DP, mode="hooks", **kw):
    rate, steps = dp_schedule(len(ds.y_train), settings.batch_size, settings.epochs)
    noise = calibrate_noise(eps, 1e-5, rate, steps, "rdp").noise_multiplier
    privacy = PrivacySettings(noise_multiplier=noise, accountant="rdp", grad_sample_mode=mode)
    return train(_model(ds, seed), ds.x_train, ds.y_train, settings, privacy_settings=privacy, seed=seed, **kw)


def test_non_private_digits_cnn_reaches_95_percent(digits):
    s = TrainSettings(epochs=15, batch_size=64, lr=0.05, momentum=0.9)
    model, metrics = train(_model(digits), digits.x_train, digits.y_train, s, seed=0)
    assert not metrics["private"]
    assert evaluate(model, digits.x_test, digits.y_test)["acc"] >= 0.95


def test_private_accuracy_rises_with_epsilon_and_epsilon_is_within_target(digits):
    accs = {}
    for eps in (0.5, 50):
        model, metrics = _dp_train(digits, eps)
        assert metrics["private"] and 0 < metrics["epsilon"] <= eps
        accs[eps] = evaluate(model, digits.x_test, digits.y_test)["acc"]
    assert accs[50] > accs[0.5] + 0.05, accs


def test_private_training_is_deterministic_for_a_seed(digits):
    a, _ = _dp_train(digits, 5, seed=3, settings=TrainSettings(epochs=2, batch_size=128, lr=2.0, momentum=0))
    b, _ = _dp_train(digits, 5, seed=3, settings=TrainSettings(epochs=2, batch_size=128, lr=2.0, momentum=0))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


@pytest.mark.parametrize("mode", ["hooks", "ghost"])  # ghost accumulates clipped chunk sums in its optimizer
def test_physical_batch_changes_memory_not_privacy_or_result(digits, mode):
    s = TrainSettings(epochs=2, batch_size=128, lr=2.0, momentum=0)
    whole, m1 = _dp_train(digits, 5, seed=1, settings=s, mode=mode)
    chunked, m2 = _dp_train(digits, 5, seed=1, settings=TrainSettings(**{**s.__dict__, "physical_batch_size": 16}),
                            mode=mode)
    assert m1["epsilon"] == m2["epsilon"] and m1["steps"] == m2["steps"]
    for va, vb in zip(whole.state_dict().values(), chunked.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-3, atol=1e-4)  # only summation order differs


@pytest.mark.parametrize("mode", ["ew", "functorch", "ghost"])
def test_grad_sample_modes_agree_with_hooks(digits, mode):
    s = TrainSettings(epochs=1, batch_size=128, lr=2.0, momentum=0)
    rate, steps = dp_schedule(len(digits.y_train), 128, 1)
    runs = {}
    for m in ("hooks", mode):
        runs[m], _ = train(_model(digits), digits.x_train, digits.y_train, s, seed=0,
                           privacy_settings=PrivacySettings(noise_multiplier=1.0, accountant="rdp", grad_sample_mode=m))
    for va, vb in zip(runs["hooks"].state_dict().values(), runs[mode].state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-3, atol=2e-4)  # float summation order differs


@pytest.mark.parametrize("mode", [*CHANNELS_LAST_MODES, None])
def test_channels_last_trains_the_same_model(digits, mode):
    s = TrainSettings(epochs=1, batch_size=128, lr=2.0, momentum=0)
    runs = {}
    for layout in (False, True):
        p = PrivacySettings(noise_multiplier=1.0, accountant="rdp", grad_sample_mode=mode) if mode else None
        runs[layout], _ = train(_model(digits), digits.x_train, digits.y_train,
                                TrainSettings(**{**s.__dict__, "channels_last": layout}), privacy_settings=p, seed=0)
    for va, vb in zip(runs[False].state_dict().values(), runs[True].state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-3, atol=2e-4)  # float summation order differs


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_channels_last_is_refused_where_opacus_gets_per_example_gradients_wrong(digits, mode):
    s = TrainSettings(epochs=1, batch_size=128, channels_last=True)
    with pytest.raises(ValueError, match="channels_last.*wrong per-example gradients"):
        train(_model(digits), digits.x_train, digits.y_train, s,
              privacy_settings=PrivacySettings(noise_multiplier=1.0, accountant="rdp", grad_sample_mode=mode))


def test_opacus_conv_grad_sampler_is_still_wrong_on_channels_last():
    """Why hooks and ghost refuse channels_last; if this fails, Opacus has fixed it and they may allow it."""
    from opacus.grad_sample.utils import prepare_module

    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        torch.manual_seed(0)
        conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(144, 4))
        net = prepare_module(conv.to(memory_format=layout), "hooks", loss_reduction="sum")
        torch.nn.functional.cross_entropy(net(x.contiguous(memory_format=layout)), y, reduction="sum").backward()
        grads.append(conv[0].weight.grad_sample.clone())
    assert not torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-5)


def test_learning_rate_drops_at_milestones_that_are_fractions_of_the_epochs():
    s = TrainSettings(epochs=10, optimizer="adam", lr=1.0, lr_milestones=(0.05, 0.6, 0.62), lr_gamma=0.1)
    optimizer = make_optimizer([torch.zeros(1, requires_grad=True)], s)
    assert isinstance(optimizer, torch.optim.Adam)
    scheduler, lrs = lr_scheduler(optimizer, s), []
    for _ in range(s.epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # 0.05 of 10 epochs rounds to 0, so its drop comes after epoch 1; 0.6 and 0.62 both round to epoch 6: one drop
    assert lrs == pytest.approx([1.0] + [0.1] * 5 + [0.01] * 4)


def test_zero_noise_is_an_error_not_a_silent_non_private_run():
    with pytest.raises(ValueError, match="noise_multiplier"):
        PrivacySettings(noise_multiplier=0.0)


def test_deterministic_kernels_train_and_match_the_default_path(digits):
    from memcurv.jobs.toolkit import configure_torch

    quick = TrainSettings(epochs=1, batch_size=128, lr=2.0, momentum=0.0)
    plain, _ = _dp_train(digits, 5.0, settings=quick)
    try:
        configure_torch(None, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        strict, _ = _dp_train(digits, 5.0, settings=quick)
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b in zip(plain.state_dict().values(), strict.state_dict().values()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mode", [None, *BF16_MODES])
def test_bf16_trains_with_a_bf16_forward_pass_and_records_it(digits, mode):
    s = TrainSettings(epochs=2, batch_size=128, lr=2.0 if mode else 0.05, momentum=0.0 if mode else 0.9)
    p = PrivacySettings(noise_multiplier=1.0, accountant="rdp", grad_sample_mode=mode) if mode else None
    accs = {}
    for precision in ("fp32", "bf16"):
        model, dtypes = _model(digits), set()
        model[-1].register_forward_hook(lambda _m, _i, out: dtypes.add(out.dtype))
        model, metrics = train(model, digits.x_train, digits.y_train,
                               TrainSettings(**{**s.__dict__, "precision": precision}), privacy_settings=p)
        assert metrics["precision"] == precision
        assert dtypes == {torch.float32 if precision == "fp32" else torch.bfloat16}  # the forward pass's arithmetic
        accs[precision] = evaluate(model, digits.x_test, digits.y_test)["acc"]
    assert accs["fp32"] > 0.6 and abs(accs["bf16"] - accs["fp32"]) < 0.05, accs


def test_tf32_on_a_cpu_is_ieee_fp32_and_says_so(digits, caplog):
    s = TrainSettings(epochs=1, batch_size=128, lr=0.05)
    runs = {}
    for precision in ("fp32", "tf32"):
        runs[precision], metrics = train(_model(digits), digits.x_train, digits.y_train,
                                         TrainSettings(**{**s.__dict__, "precision": precision}))
        assert metrics["precision"] == "fp32"
    assert "no TF32: training in IEEE fp32" in caplog.text
    for a, b in zip(runs["fp32"].state_dict().values(), runs["tf32"].state_dict().values()):
        assert torch.equal(a, b)


def test_precision_auto_is_tf32_on_a_gpu_and_fp32_on_a_cpu():
    assert training_precision("auto", torch.device("cuda")) == "tf32"
    assert training_precision("auto", torch.device("cpu")) == "fp32"
    assert training_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ValueError, match="train.precision"):
        TrainSettings(precision="fp16")


def test_bf16_is_refused_where_expanded_weights_fail_under_autocast(digits):
    with pytest.raises(ValueError, match="bf16 needs privacy.grad_sample_mode .* not 'ew'"):
        train(_model(digits), digits.x_train, digits.y_train, TrainSettings(epochs=1, precision="bf16"),
              privacy_settings=PrivacySettings(noise_multiplier=1.0, accountant="rdp", grad_sample_mode="ew"))


def test_evaluation_out_of_memory_halves_the_batch_with_the_same_results(digits):
    model = _model(digits)
    ref = evaluate(model, digits.x_test, digits.y_test, batch_size=1024)
    limited = MemoryLimited(model, limit=100)
    got = evaluate(limited, digits.x_test, digits.y_test, batch_size=1024)
    assert limited.sizes == [360, 180, 90, 90, 90, 90]  # the 360 test images, halved until they fit
    for key in ("correct", "prob"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-6)
    assert got["acc"] == ref["acc"] and got["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    with pytest.raises(RuntimeError, match="device-side assert"):
        evaluate(MemoryLimited(model, 0, lambda msg: RuntimeError("device-side assert")), digits.x_test, digits.y_test)


class _RunsCode:
    """What a malicious pickle carries: unpickling it would call os.system."""

    def __reduce__(self):
        import os

        return os.system, ("touch pwned",)


def test_loading_a_checkpoint_runs_no_code_it_holds_and_a_resume_still_works(digits, tmp_path, monkeypatch):
    """Checkpoints hold only tensors, numbers and dicts, so they are read with weights_only=True: a checkpoint handed
    to a user, or left in a shared results folder, cannot run code (an epoch checkpoint that tries is set aside as
    damaged and the model trained again); an honest one resumes as before."""
    import pickle

    from memcurv.jobs import toolkit

    monkeypatch.chdir(tmp_path)
    x, y = digits.x_train[:64], digits.y_train[:64]
    settings = TrainSettings(epochs=2, batch_size=32, lr=0.05)
    ckpt = tmp_path / "resume.pt"
    first, _ = train(build_model("small_cnn", digits.input_shape, 10), x, y, settings, seed=0, checkpoint_path=ckpt)
    again, _ = train(build_model("small_cnn", digits.input_shape, 10), x, y, settings, seed=0, checkpoint_path=ckpt)
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)  # resumed at the last epoch: nothing more to train
    saved = torch.load(ckpt, weights_only=True)
    torch.save({**saved, "state": {**saved["state"], "note": _RunsCode()}}, ckpt)
    _, metrics = train(build_model("small_cnn", digits.input_shape, 10), x, y, settings, seed=0, checkpoint_path=ckpt)
    assert (tmp_path / "resume.pt.damaged").exists()  # refused unread, set aside, trained again from epoch 0
    evil = tmp_path / "seed0.pt"  # a shard's finished model, kept for a rerun after a kill
    torch.save({"state_dict": first.state_dict(), "metrics": _RunsCode(), "curvature": {}}, evil)
    with pytest.raises(pickle.UnpicklingError):
        toolkit.kept_results(evil)
    assert not (tmp_path / "pwned").exists()


def test_a_damaged_epoch_checkpoint_is_set_aside_and_the_model_trained_from_the_start(digits, tmp_path, caplog):
    """A truncated epoch checkpoint (a job killed while the disk filled) would stop every rerun: it is moved to
    <name>.damaged with a warning naming it, and the model trains from epoch 0 to what a fresh run gives."""
    x, y = digits.x_train[:64], digits.y_train[:64]
    settings = TrainSettings(epochs=2, batch_size=32, lr=0.05)
    torch.manual_seed(0)
    fresh, _ = train(build_model("small_cnn", digits.input_shape, 10), x, y, settings, seed=0)
    ckpt = tmp_path / "model3_epoch.pt"
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    torch.manual_seed(0)
    with caplog.at_level("WARNING", logger="memcurv.training.train"):
        again, _ = train(build_model("small_cnn", digits.input_shape, 10), x, y, settings, seed=0, checkpoint_path=ckpt)
    assert "model3_epoch.pt is damaged" in caplog.text and (tmp_path / "model3_epoch.pt.damaged").exists()
    for a, b in zip(fresh.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_a_sampled_curvature_is_the_whole_sets_scores_of_a_fixed_sample():
    """curvature.train_examples scores a fixed seeded sample of the training set, the same for every model and not
    the test sample's indices: each value is the whole set's score of that example, so a sample changes which
    examples a DP model's mean curvature is over, never a score."""
    from memcurv import config
    from memcurv.jobs import toolkit

    cfg = config.validate({"study": "sampled", "dataset": {"name": "digits"}, "device": "cpu",
                           "curvature": {"probes": 2, "train_examples": 40}})
    ds = toolkit.dataset(cfg)
    model = toolkit.fresh_model(cfg, ds, 0).eval()
    cpu = torch.device("cpu")
    chosen = toolkit.scored_ids(cfg, len(ds.y_train), 40, "train")
    assert len(np.unique(chosen)) == 40 and np.array_equal(chosen, toolkit.scored_ids(cfg, len(ds.y_train), 40,
                                                                                       "train"))
    assert not np.array_equal(chosen, toolkit.scored_ids(cfg, len(ds.y_train), 40, "test"))
    full = toolkit.dataset_curvature(cfg, model, ds, cpu)
    part = toolkit.dataset_curvature(cfg, model, ds, cpu, sample=cfg.curvature.train_examples)
    assert full.keys() == part.keys()
    for score, values in part.items():
        assert values.shape == (40,)
        np.testing.assert_allclose(values, full[score][chosen], rtol=1e-4, atol=1e-6, err_msg=score)
