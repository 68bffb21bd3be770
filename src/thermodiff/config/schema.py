"""Typed, frozen configuration: one dataclass per section (a leaf: load.py reads TOML and validates)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    name: str = "swiss_roll"  # key of thermodiff.data.DATASETS
    sigma: float = 0.002  # swiss roll: std of the Gaussian tube around the curve (raw units)
    n_train: int = 100_000  # examples drawn for generated data sets
    n_test: int = 10_000
    seed: int = 0  # generated data: train uses seed, test uses seed + 1
    path: str = ""  # file or directory for data sets read from disk
    p_bar: float = -1.0  # binomial stationary rate; -1 means the training-data mean
    image_size: int = 32  # dead_leaves: image side; bark: patch side (pixels)
    resize: int = 0  # image_folder: resize every image to resize x resize (0 = keep; sizes must match)
    grayscale: bool = False  # image_folder: one channel (a colour image is an error); False = RGB
    r_min: float = 1.0  # dead_leaves: smallest disk radius (pixels); radius density proportional to r^-3
    r_max: float = 64.0  # dead_leaves: largest disk radius (pixels)
    holdout: float = 0.25  # bark: right-hand fraction of the texture's columns kept for test patches;
    # array: the fraction of rows held out for test (seeded by data.seed) when the file has one split
    sha256: str = ""  # of the file at data.path, recorded at training; a file that differs is refused


@dataclass(frozen=True)
class DiffusionConfig:
    kernel: str = "gaussian"  # gaussian | binomial
    T: int = 40
    schedule: str = "paper"  # paper | log_snr | linear | cosine | learned
    learned_init: str = "paper"  # the schedule a learned one starts from: paper | log_snr
    beta_1: float = 1e-3  # fixed first step (paper 2.4.1); sets the resolution of the density
    beta_max: float = 0.5  # linear schedule's last beta
    # Gaussian: paper (P eqs. 64-65) | eps; binomial: paper (f_b = sigmoid) | offset (logit offset
    # by the equilibrium reversal of the step: an untrained network is that reversal, not a coin flip)
    parameterization: str = "paper"
    # eps: small | large | learned_range | full (vector data: a full covariance); paper: learned
    variance: str = "learned"
    # the last reverse step p(x_0|x_1): "fixed" to the reversal of forward step 1 (P App. B.2), or
    # "learned" by the network like every other step (binomial kernel only: binary x_0)
    first_step: str = "fixed"
    # classifier tasks: take T and the betas (and the data scaling) from this diffusion run directory,
    # so that the classifier sees the same q(x_t | x_0) as the model it guides ("" = this section)
    from_run: str = ""


@dataclass(frozen=True)
class ModelConfig:
    net: str = "mlp"  # key of thermodiff.nets.NETS, or "package.module:Class" (a network of one's own)
    kwargs: dict = field(default_factory=dict)  # model.net = "module:Class": Class(**kwargs) (+ shape, T ...)
    hidden: int = 128
    layers: int = 3
    rbf_units: int = 16
    fourier: int = 0  # MLP: number of random Fourier features of x (0 = raw x)
    fourier_scale: float = 8.0
    time_embed: int = 64
    # the paper's image network (P D.2.1): nets/multiscale.py
    conv_layers: int = 4
    conv_channels: int = 32
    n_scales: int = 3
    dense_layers: int = 0  # Linear+tanh layers in the dense pathway (0 = none)
    dense_hidden: int = 500
    dense_out: int = 2  # dense-pathway features per pixel
    pixel_hidden: int = 32
    pixel_layers: int = 2
    n_bumps: int = 10  # J, temporal bump functions
    # DDPM U-Net: nets/unet.py
    base: int = 128
    mults: str = "1,2,2,2"
    num_res_blocks: int = 2
    attn_resolutions: str = "16"  # "" = attention only in the middle block
    dropout: float = 0.1
    heads: int = 1


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 20_000
    batch: int = 512
    lr: float = 2e-3
    lr_final: float = 1e-4  # cosine decay target
    warmup: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.999  # the moving average's decay once warmed up
    ema_warmup: bool = True  # decay min(ema, (1 + k) / (10 + k)) at update k: early averages follow
    seed: int = 0
    log_every: int = 100
    ckpt_every: int = 5_000
    sample_every: int = 0  # 8-bit images: a 16-sample grid (EMA net) to samples/step_N.png; 0 = never
    dequantize: bool = True  # 8-bit images: uniform noise of one grey level (paper units)
    # GPU fast path (fast.py); a no-op on a CPU (unchanged, deterministic) unless fast_cpu
    precision: str = "fp32"  # fp32 | bf16: autocast of the network only; the bound stays float64
    channels_last: bool = False  # NHWC activations and conv weights
    compile: bool = False  # torch.compile of the network (training and graphed sampling)
    cuda_graphs: bool = True  # sampling: replay a CUDA graph of the network call per batch shape
    fast_cpu: bool = False  # precision, channels_last and compile act on a CPU too (CPU bf16, inductor)
    # diffusion | classifier (p(y | x_t, t) on noisy x_t, for guidance) | clean_classifier (t = 0 only)
    task: str = "diffusion"


@dataclass(frozen=True)
class EvalConfig:
    n: int = 10_000  # held-out examples
    batch: int = 2_000
    exact: bool = True  # all t (True) or one random t per example (False)
    reference_K_bits: float = float("nan")  # the paper's Table 1 figure, printed beside ours
    reference_K_minus_Lnull_bits: float = float("nan")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
