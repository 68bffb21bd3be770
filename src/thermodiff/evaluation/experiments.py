"""The paper's experiments as `reproduce` runs them: a bundled config and overrides per budget (no imports,
so that `thermodiff reproduce -h` lists them without loading torch)."""

# experiment -> (config, overrides) per budget. Images (P 3.2): quick = the CPU-sized config
# (configs/*_cpu.toml: a few CPU minutes at 16 x 16, or a narrower net; each says its measured CPU time),
# full = the bundled config (sized for a GPU).
EXPERIMENTS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "heartbeat": {
        "quick": ("heartbeat", ("train.steps=20000",)),
        "full": ("heartbeat", ()),
    },
    # quick (`make demo`): 83 s of CPU time; 4,500 steps at lr 2e-3 came within 0.05 bit of 8,000 at 1e-3
    # (K = 2.41 against 2.46 +- 0.07 bits on the same 2,000 test examples) for 55% of the training
    "swiss_roll": {
        "quick": ("swiss_roll", ("train.steps=4500", "train.lr=2e-3", "eval.n=2000")),
        "full": ("swiss_roll", ()),
    },
    "dead_leaves": {"quick": ("dead_leaves_cpu", ()), "full": ("dead_leaves", ())},
    "bark": {"quick": ("bark_cpu", ()), "full": ("bark", ())},
    "mnist": {"quick": ("mnist_cpu", ()), "full": ("mnist", ())},
    "cifar10": {"quick": ("cifar10_cpu", ()), "full": ("cifar10", ())},
}
