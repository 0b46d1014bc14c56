"""The pytest plugin as another project meets it: a fresh folder, the package installed.

Each run is a subprocess (``runpytest_subprocess``), so neither this repository's
conftest nor its hypothesis profile leaks in.
"""

from __future__ import annotations

import pytest

from harness.pytest_plugin import cuda_available

USES_FIXTURES = """
def test_device(device):
    assert device in ("cpu", "cuda")

def test_dtype(dtype):
    assert dtype in ("float32", "float64", "bfloat16")

def helper_fixture_user(device, dtype):
    pass
"""


def test_options_are_there_in_a_fresh_project(pytester: pytest.Pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*backprop-oracle*", "*--device=DEVICE*", "*--dtype=DTYPE*"])


def test_fixtures_are_parametrized_by_the_options(pytester: pytest.Pytester):
    pytester.makepyfile(USES_FIXTURES)
    result = pytester.runpytest_subprocess(
        "--device", "cpu,cuda", "--dtype", "float,bfloat16", "-v", "-rs"
    )
    result.stdout.fnmatch_lines(
        ["*test_device[[]cpu[]] PASSED*", "*test_dtype[[]float32[]] PASSED*", "*bfloat16*"]
    )
    if cuda_available():
        result.assert_outcomes(passed=4)
    else:
        result.assert_outcomes(passed=3, skipped=1)
        result.stdout.fnmatch_lines(["*SKIPPED*no CUDA device*"])


def test_a_fixture_of_the_project_can_take_them(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def model(device, dtype):
    return f"{device}/{dtype}"
"""
    )
    pytester.makepyfile("def test_model(model):\n    assert model.startswith('cpu/')\n")
    pytester.runpytest_subprocess("--device", "cpu").assert_outcomes(passed=2)


def test_the_projects_own_parametrization_and_fixtures_are_left_alone(pytester: pytest.Pytester):
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef device():\n    return 'tpu'\n")
    pytester.makepyfile(
        """
import pytest

@pytest.mark.parametrize("dtype", ["int8"])
def test_own(dtype, device):
    assert (dtype, device) == ("int8", "tpu")
"""
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_the_users_hypothesis_profile_is_respected(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
from hypothesis import settings
settings.register_profile("mine", max_examples=7, database=None)
settings.load_profile("mine")
"""
    )
    pytester.makepyfile(
        """
from hypothesis import given, strategies as st
calls = []

@given(st.integers())
def test_count(x):
    calls.append(x)

def test_after():
    print("examples:", len(calls))
"""
    )
    result = pytester.runpytest_subprocess("-s")
    result.stdout.fnmatch_lines(["*examples: 7*"])
    # our profiles are registered, so selecting one works (it was an INTERNALERROR)
    result = pytester.runpytest_subprocess("-s", "--hypothesis-profile=dev")
    result.stdout.fnmatch_lines(["*examples: 12*"])


def test_a_misspelt_dtype_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile(USES_FIXTURES)
    result = pytester.runpytest_subprocess("--dtype", "float33")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dtype: unknown dtype 'float33'*"])


def test_the_markers_are_registered(pytester: pytest.Pytester):
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.gpu\n@pytest.mark.slow\ndef test_m():\n    pass\n"
    )
    pytester.runpytest_subprocess("--strict-markers").assert_outcomes(passed=1)
