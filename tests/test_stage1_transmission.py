"""Stage 1's learned transmission: Beer-Lambert along the A-line, learned, and worth having."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ivus_sim.aae.condition import CONDITION_CHANNELS, N_CLASSES, label_condition
from ivus_sim.stage1 import LearnedTransmission, Stage1Decoder
from ivus_sim.stage1.transmission import INITIAL_ATTENUATION
from ivus_sim.tissues import PALETTE_IDS, Tissue
from ivus_sim.two_stage import ModelConfig, TwoStageAAE


def _labels(a: int = 16, s: int = 32, wire_angles: tuple[int, ...] = (3, 4), wire_depth: int = 12) -> torch.Tensor:
    lab = torch.full((1, a, s), int(Tissue.FIBROUS), dtype=torch.uint8)
    lab[:, :, :3] = int(Tissue.CATHETER)
    lab[:, :, 3:8] = int(Tissue.LUMEN)
    for k in wire_angles:
        lab[:, k, wire_depth:wire_depth + 2] = int(Tissue.GUIDEWIRE)
    return lab


def test_matches_beer_lambert_reference() -> None:
    rng = np.random.default_rng(0)
    lab = torch.as_tensor(rng.choice(PALETTE_IDS, size=(2, 8, 24)).astype(np.uint8))
    t = LearnedTransmission()
    got = t(label_condition(lab)[:, :N_CLASSES])[:, 0].detach().numpy()
    learned = dict(zip(PALETTE_IDS, t.attenuation().detach().numpy().tolist(), strict=True))
    np.testing.assert_allclose([learned[k] for k in PALETTE_IDS], [INITIAL_ATTENUATION[k] for k in PALETTE_IDS],
                               atol=2e-4)  # starts at the documented values
    alpha = np.array([learned[int(v)] for v in lab.numpy().ravel()]).reshape(lab.shape)
    ref = np.exp(-(np.cumsum(alpha, -1) - alpha))  # attenuation strictly in front of each sample
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    assert np.all(np.diff(got, axis=-1) <= 1e-7), "transmission never grows with depth"


def test_thin_reflector_casts_a_full_shadow_the_fraction_channel_does_not() -> None:
    lab = _labels()
    cond = label_condition(lab)
    tr = LearnedTransmission()(cond[:, :N_CLASSES])[0, 0]
    behind, beside = tr[3, 20].item(), tr[9, 20].item()
    assert behind < 0.35 * beside  # most of the beam is gone behind a 2-sample guidewire
    wire_cum = cond[0, N_CLASSES + 1 + PALETTE_IDS.index(int(Tissue.GUIDEWIRE))]
    assert wire_cum[3, 20].item() < 0.1  # the cumulative-fraction channel says "almost nothing"


def test_gradients_reach_the_attenuation() -> None:
    t = LearnedTransmission()
    out = t(label_condition(_labels())[:, :N_CLASSES])
    out[..., 20:].mean().backward()
    assert t.rho.grad is not None
    g = t.rho.grad
    assert g[PALETTE_IDS.index(int(Tissue.GUIDEWIRE))] < 0  # more attenuation -> darker behind it
    assert g[PALETTE_IDS.index(int(Tissue.OUTSIDE))] == 0  # nothing outside in this map


def _fit(transmission: bool, seed: int, steps: int = 150) -> float:
    """Fit stage 1 to 'shadow behind thin wires at random angles'; return the error behind wires."""
    torch.manual_seed(seed)
    net = Stage1Decoder(CONDITION_CHANNELS, z_dim=2, channels=(8, 16), transmission=transmission)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)

    def batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        labs, targets, masks = [], [], []
        for _ in range(n):
            angles = tuple(int(a) for a in torch.randperm(16, generator=g)[:2])
            depth = int(torch.randint(10, 18, (1,), generator=g))
            lab = _labels(wire_angles=angles, wire_depth=depth)
            tgt = torch.full((1, 1, 16, 32), 0.6)
            mask = torch.zeros(1, 1, 16, 32, dtype=torch.bool)
            for k in angles:
                tgt[..., k, depth + 2:] = 0.1
                mask[..., k, depth + 2:] = True
            labs.append(lab)
            targets.append(tgt)
            masks.append(mask)
        return torch.cat(labs), torch.cat(targets), torch.cat(masks)

    z = torch.zeros(4, 2)
    for _ in range(steps):
        lab, tgt, _ = batch()
        loss = (net(label_condition(lab), z) - tgt).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    lab, tgt, mask = batch()
    with torch.no_grad():
        err = (net(label_condition(lab), z) - tgt).abs()
    return float(err[mask].mean())


@pytest.mark.slow
def test_stage1_learns_wire_shadows_better_with_transmission() -> None:
    with_t = [_fit(True, s) for s in (0, 1)]
    without = [_fit(False, s) for s in (0, 1)]
    assert max(with_t) < min(without), (with_t, without)


def test_model_config_switch_and_old_files() -> None:
    assert ModelConfig.from_dict({}).transmission is False  # files from before the setting
    cfg = ModelConfig(transmission=True)
    assert ModelConfig.from_dict(cfg.to_dict()).transmission is True
    with_t, without = TwoStageAAE(cfg, training_parts=False), TwoStageAAE(ModelConfig(), training_parts=False)
    assert with_t.stage1.transmission is not None and without.stage1.transmission is None
    assert with_t.stage1.inp.conv.conv.weight.shape[1] == without.stage1.inp.conv.conv.weight.shape[1] + 1
    # the attenuation learns at the physical scalars' rate, next to stage 2's scanner
    assert id(with_t.stage1.transmission.rho) in {id(p) for p in with_t.physical_parameters()}
    assert len(with_t.physical_parameters()) == len(without.physical_parameters()) + 1
    assert len(without.physical_parameters()) == len(list(without.stage2.scanner.parameters())) > 0
