"""Regenerate ``vvjax/_data/paper_neuron_sharing.npz``: the authors' exact data and initialisations.

The neuron-sharing notebook of the paper's code (``neuron_sharing_exp.ipynb``, docs/paper.md §7.1)
draws its data and networks with PyTorch's random numbers::

    torch.manual_seed(43); x_train = torch.randn(50, 2); data_net = Net(2, 5, 2)
    y_train = data_net(x_train)
    torch.manual_seed(49); model = Net(2, 100, 2)          # inside train_net, the student

with ``Net`` = ``Linear(d, H)`` -> ReLU -> ``Linear(H, D, bias=False)``. This script replays those
calls (PyTorch is needed here only) and stores the arrays in vvjax's convention,
``f(x) = V relu(W x - b)``, i.e. ``b = -bias``, in float32 as PyTorch made them. vvjax ships the
file, so runs use the paper's exact problem without PyTorch. Run::

    python experiments/make_paper_data.py [--check] [--out PATH]

``--check`` regenerates the arrays and compares them with the shipped file instead of writing.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "vvjax" / "_data" / "paper_neuron_sharing.npz"


def generate() -> dict[str, np.ndarray]:
    import torch
    import torch.nn.functional as F

    class Net(torch.nn.Module):  # the notebook's network, unchanged
        def __init__(self, D_in, H, D_out):
            super().__init__()
            self.linear1 = torch.nn.Linear(D_in, H)
            self.linear2 = torch.nn.Linear(H, D_out, bias=False)

        def forward(self, x):
            return self.linear2(F.relu(self.linear1(x)))

    def arrays(net, prefix):
        return {f"{prefix}_W": net.linear1.weight.detach().numpy().copy(),
                f"{prefix}_b": -net.linear1.bias.detach().numpy().copy(),
                f"{prefix}_V": net.linear2.weight.detach().numpy().copy()}

    torch.manual_seed(43)
    x_train = torch.randn(50, 2)
    data_net = Net(2, 5, 2)
    y_train = data_net(x_train).data
    torch.manual_seed(49)
    student = Net(2, 100, 2)
    return {"X": x_train.numpy().copy(), "Y": y_train.numpy().copy(), **arrays(data_net, "teacher"),
            **arrays(student, "student")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with the file instead of writing")
    args = ap.parse_args(argv)
    new = generate()
    if args.check:
        with np.load(args.out) as old:
            same = set(old.files) == set(new) and all(np.array_equal(old[k], new[k]) for k in new)
        print(f"{args.out}: {'identical to' if same else 'DIFFERENT from'} a fresh PyTorch replay")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **new)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in new.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
