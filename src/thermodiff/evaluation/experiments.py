"""The paper's experiments as `reproduce` runs them: a bundled config and overrides per budget (no imports,
so that `thermodiff reproduce -h` lists them without loading torch)."""

_IMAGE_QUICK = (
    "train.steps=1500",
    "train.batch=32",
    "train.sample_every=0",
    "train.ema=0.99",  # an average over the last ~100 steps of a short run
    "data.n_train=5000",
    "data.n_test=500",
    "eval.n=30",
    "eval.batch=250",
    "eval.exact=true",
)

# experiment -> (config, overrides) per budget
EXPERIMENTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "heartbeat": {
        "quick": ("heartbeat", ("train.steps=20000",)),
        "full": ("heartbeat", ()),
    },
    "swiss_roll": {
        "quick": ("swiss_roll", ("train.steps=8000", "eval.n=2000")),
        "full": ("swiss_roll", ()),
    },
    # images (P 3.2): quick = a few CPU minutes at 16 x 16 (or a narrower net), evaluated over all t on
    # 30 test images (one random t per example on 500 has a ~3x larger standard error; under the paper's
    # own schedule it is also heavy-tailed: the t = 2 term is drawn once in T - 1); full = the bundled
    # config (sized for a GPU).
    "dead_leaves": {
        "quick": ("dead_leaves", (*_IMAGE_QUICK, "data.image_size=16", "model.conv_channels=32")),
        "full": ("dead_leaves", ()),
    },
    "bark": {
        "quick": ("bark", (*_IMAGE_QUICK, "data.image_size=16", "model.conv_channels=32")),
        "full": ("bark", ()),
    },
    "mnist": {
        "quick": ("mnist", (*_IMAGE_QUICK, "train.steps=2000", "eval.n=100")),
        "full": ("mnist", ()),
    },
    "cifar10": {
        "quick": (
            "cifar10",
            (
                *_IMAGE_QUICK,
                "train.steps=300",
                "train.batch=32",
                "model.conv_layers=3",
                "model.conv_channels=32",
                "model.dense_layers=2",
                "model.dense_hidden=256",
                "model.pixel_hidden=32",
                "train.precision=fp32",
                "eval.n=10",
            ),
        ),
        "full": ("cifar10", ()),
    },
}
