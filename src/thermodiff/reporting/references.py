"""Published numbers the report sets beside ours: the only numbers in the report not read from a run.
Each names its paper and table (checked against the paper's text, never typed from memory); `key` is
the eval.json field it compares with (same data, same unit)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """A published result: data set, the eval.json key it is comparable to, model, value, source."""

    data: str
    key: str
    model: str
    value: str  # as printed in the source (its digits)
    source: str
    bound: bool = False  # an upper bound on the NLL (a lower bound on the log-likelihood), not exact


REFERENCES: tuple[Reference, ...] = (
    # Dead leaves, log-likelihood in bits/pixel (higher is better), the paper's own comparison.
    Reference(
        "dead_leaves", "K_bits", "MCGSM (Theis et al. 2012)", "1.244", "Sohl-Dickstein et al. 2015, Table 2"
    ),
    # CIFAR-10, test NLL in bits/dim on the 8-bit grid (lower is better).
    Reference("cifar10", "nll_bits_per_dim", "Gated PixelCNN", "3.03", "Ho et al. 2020 (DDPM), Table 1"),
    Reference("cifar10", "nll_bits_per_dim", "Sparse Transformer", "2.80", "Ho et al. 2020 (DDPM), Table 1"),
    Reference(
        "cifar10", "nll_bits_per_dim", "DDPM (L, fixed isotropic Σ)", "3.70", "Ho et al. 2020, Table 1", True
    ),
    Reference("cifar10", "nll_bits_per_dim", "DDPM (L_simple)", "3.75", "Ho et al. 2020, Table 1", True),
    Reference("cifar10", "nll_bits_per_dim", "PixelCNN++", "2.92", "Salimans et al. 2017, CIFAR-10 result"),
    Reference(
        "cifar10", "nll_bits_per_dim", "iDDPM", "2.94", "Nichol & Dhariwal 2021, CIFAR-10 result", True
    ),
    # Binarized MNIST, test NLL in nats per image (lower is better).
    Reference("binarized_mnist", "nll_nats", "PixelCNN", "81.3", "van den Oord et al. 2016 (Pixel RNN)"),
    Reference("binarized_mnist", "nll_nats", "PixelRNN", "79.2", "van den Oord et al. 2016 (Pixel RNN)"),
)


def references_for(data: str, key: str) -> list[Reference]:
    """The published results comparable to eval.json[key] on data set `data`."""
    return [r for r in REFERENCES if r.data == data and r.key == key]
