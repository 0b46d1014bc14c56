"""Derivatives with autograd: of a function at a point, and partial derivatives.

A derivative at a point: y = 3 x^2 at x = 3 has dy/dx = 6 x = 18. Make x a leaf that
requires a gradient, compute y, call ``y.backward()``: ``x.grad`` holds dy/dx.

Partial derivatives: f(u, v) = u^3 + v^2 + 4 u v at u = 3, v = 4 has
df/du = 3 u^2 + 4 v = 43 and df/dv = 2 v + 4 u = 20. One backward fills both leaves'
``grad``. ``reference.autograd.grad(f, (u, v))`` returns them instead of accumulating.

Run from the repository root: ``python examples/derivatives.py``.
"""

from __future__ import annotations

import reference.autograd as ag


def main() -> None:
    x = ag.tensor(3.0, requires_grad=True)
    y = 3 * x**2
    y.backward()
    print(f"y at x = 3: {y.item():.4f}")
    print(f"dy/dx at x = 3: {x.grad.item():.4f}")

    u = ag.tensor(3.0, requires_grad=True)
    v = ag.tensor(4.0, requires_grad=True)
    f = u**3 + v**2 + 4 * u * v
    f.backward()
    print(f"f at (3, 4): {f.item():.4f}")
    print(f"df/du: {u.grad.item():.4f}")
    print(f"df/dv: {v.grad.item():.4f}")

    # the same, returned rather than accumulated into .grad
    u2 = ag.tensor(3.0, requires_grad=True)
    v2 = ag.tensor(4.0, requires_grad=True)
    du, dv = ag.grad(u2**3 + v2**2 + 4 * u2 * v2, (u2, v2))
    print(f"autograd.grad: ({du.item():.4f}, {dv.item():.4f})")


if __name__ == "__main__":
    main()
