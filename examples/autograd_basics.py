"""The autograd tutorial's first example, on the reference's tape.

    x = ones(2, 2, requires_grad=True)   # a leaf: backward fills x.grad
    y = x + 2                            # every entry 3; y.grad_fn is AddBackward0
    z = y * y * 3                        # every entry 27
    out = z.mean()                       # 27
    out.backward()                       # d(out)/dx

The chain rule, by hand: out = (1/4) sum_i 3 y_i^2 and y_i = x_i + 2, so
d(out)/dx_i = (1/4) * 6 y_i * 1 = 1.5 * 3 = 4.5 for every entry. ``backward`` gets the
same numbers by walking the recorded graph backwards: MeanBackward0 hands 1/4 to each
entry, each MulBackward0 multiplies by the other factor (y is used twice, so its two
contributions add), AddBackward0 passes the gradient through, and the leaf's
AccumulateGrad adds it into ``x.grad``. Each of those rules is written by hand in
``reference/autograd/ops_*.py``, beside its forward.

Run from the repository root: ``python examples/autograd_basics.py``.
"""

from __future__ import annotations

import reference.autograd as ag


def main() -> None:
    x = ag.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    print(f"y: {y.tolist()}")
    print(f"y.grad_fn: {y.grad_fn.name()}")
    print(f"z: {z.tolist()}")
    print(f"out: {out.item():.4f}")
    print(f"out.grad_fn: {out.grad_fn.name()}")

    out.backward()
    print(f"x.grad: {x.grad.tolist()}")

    # gradients accumulate: a second backward through a fresh graph adds 4.5 again
    ((x + 2) * (x + 2) * 3).mean().backward()
    print(f"x.grad after a second backward: {x.grad.tolist()}")

    # under no_grad nothing is recorded
    with ag.no_grad():
        print(f"(x ** 2).requires_grad under no_grad: {(x**2).requires_grad}")


if __name__ == "__main__":
    main()
