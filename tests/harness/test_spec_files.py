"""Bad spec files get one line naming the file and the problem; a crash's repro crashes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from harness.checking import check
from harness.report import load_spec, replay, save_repro
from harness.spec import LayerSpec, NetworkSpec, SpecError, SpecFileError
from harness.spec_files import check_known_types, load_spec_file

GOOD = {
    "input_shape": [3, 4],
    "layers": [
        {"type": "Linear", "kwargs": {"in_features": 4, "out_features": 5}},
        {"type": "Tanh", "kwargs": {}},
        {"type": "Linear", "kwargs": {"in_features": 5, "out_features": 2}},
    ],
    "loss": {"type": "MSELoss", "kwargs": {}},
    "target": {"kind": "regression"},
    "optimizer": {"type": "SGD", "kwargs": {"lr": 0.1}},
    "seed": 3,
}


def _edited(edit):
    data = copy.deepcopy(GOOD)
    edit(data)
    return data


def _problem(path, text):
    """The problem load_spec_file reports for a file holding ``text``: its one line,
    after the file's name."""
    path.write_text(text)
    with pytest.raises(SpecFileError) as info:
        load_spec_file(path)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: ")
    assert info.value.path == str(path)
    return line[len(f"{path}: ") :]


def test_a_good_file_and_its_folder_load_the_same_spec(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(GOOD))
    spec = load_spec_file(tmp_path / "spec.json")
    assert load_spec_file(tmp_path) == spec == load_spec(str(tmp_path))
    assert spec.optimizer == LayerSpec("SGD", {"lr": 0.1}) and spec.input_shape == (3, 4)


def test_a_missing_path_and_a_folder_without_spec_json(tmp_path):
    with pytest.raises(SpecFileError) as info:
        load_spec_file(tmp_path / "nowhere")
    assert str(info.value) == f"{tmp_path / 'nowhere'}: no such file or folder"
    with pytest.raises(SpecFileError) as info:
        load_spec_file(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: a folder without spec.json (expected a saved case folder, "
        "or the path of a spec.json file)"
    )


def test_text_that_is_not_json_or_not_an_object(tmp_path):
    path = tmp_path / "spec.json"
    assert _problem(path, "") == "not JSON: Expecting value at line 1 column 1 (the file is empty)"
    assert _problem(path, '{"input_shape": [3, 4],\n oops}') == (
        "not JSON: Expecting property name enclosed in double quotes at line 2 column 2"
    )
    assert _problem(path, "[1, 2]") == (
        "a spec is a JSON object (a spec needs input_shape, layers and loss), found an array [1, 2]"
    )
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(SpecFileError, match=r"spec.json: not text: invalid start byte at byte 0"):
        load_spec_file(path)


BAD = [
    (
        lambda d: d.pop("input_shape"),
        "missing key 'input_shape' (a spec needs input_shape, layers and loss)",
    ),
    (lambda d: d.pop("loss"), "missing key 'loss' (a spec needs input_shape, layers and loss)"),
    (
        lambda d: d.update(input_shape="3,4"),
        "input_shape must be a list of positive integers, batch first, found a string '3,4'",
    ),
    (
        lambda d: d.update(input_shape=[3, -4]),
        "input_shape must be a list of positive integers, batch first, found an array [3, -4]",
    ),
    (
        lambda d: d.update(input_shape=[3, 4.0]),
        "input_shape must be a list of positive integers, batch first, found an array [3, 4.0]",
    ),
    (
        lambda d: d.update(input_shape=[]),
        "input_shape must be a list of positive integers, batch first, found an array []",
    ),
    (
        lambda d: d.update(layers={"type": "Linear"}),
        'layers must be a list of layers, each {"type": <class name>, "kwargs": {...}}, '
        'found an object {"type": "Linear"}',
    ),
    (
        lambda d: d["layers"].__setitem__(1, "Tanh"),
        'layer 1: expected an object {"type": <class name>, "kwargs": {...}}, '
        "found a string 'Tanh'",
    ),
    (
        lambda d: d["layers"][1].pop("type"),
        'layer 1: missing key \'type\' ({"type": <class name>, "kwargs": {...}})',
    ),
    (
        lambda d: d["layers"][1].update(kwarg={}),
        "layer 1: unknown key 'kwarg' (did you mean 'kwargs'? the keys are type, kwargs, inputs)",
    ),
    (
        lambda d: d["layers"][0].update(kwargs=[4, 5]),
        "layer 0: kwargs must be an object of constructor arguments, found an array [4, 5]",
    ),
    (
        lambda d: d["layers"][0].update(type=3),
        "layer 0: type must be a class name (a string), found a number 3",
    ),
    (
        lambda d: d["layers"][2].update(type="Lineer"),
        "layer 2: unknown type 'Lineer' (not in torch.nn; did you mean 'Linear'?)",
    ),
    (
        lambda d: d["layers"][1].update(type="Relu"),
        "layer 1: unknown type 'Relu' (not in torch.nn; did you mean 'ReLU'?)",
    ),
    (
        lambda d: d["layers"][1].update(type="Xyzzy"),
        "layer 1: unknown type 'Xyzzy' (not in torch.nn)",
    ),
    (
        lambda d: d["layers"][1].update(type="MSELoss"),
        "layer 1: 'MSELoss' is a loss in torch.nn, not a layer",
    ),
    (
        lambda d: d["loss"].update(type="MSELos"),
        "loss: unknown type 'MSELos' (not in torch.nn; did you mean 'MSELoss'?)",
    ),
    (
        lambda d: d["loss"].update(type="Linear"),
        "loss: 'Linear' is a layer in torch.nn, not a loss",
    ),
    (
        lambda d: d.update(loss=None),
        'loss: expected an object {"type": <class name>, "kwargs": {...}}, found null',
    ),
    (
        lambda d: d["optimizer"].update(type="sgd"),
        "optimizer: unknown type 'sgd' (not in torch.optim; did you mean 'SGD'?)",
    ),
    (
        lambda d: d["target"].update(kind="regresion"),
        "target: unknown kind 'regresion' (one of regression, class_index, probabilities, "
        "log_probabilities, unit_interval, binary, sign, counts, label_lists; did you mean "
        "'regression'?)",
    ),
    (lambda d: d.update(steps=-1), "steps must be a non-negative integer, found a number -1"),
    (lambda d: d.update(train="yes"), "train must be true or false, found a string 'yes'"),
    (lambda d: d.update(seed=1.5), "seed must be a non-negative integer, found a number 1.5"),
    (lambda d: d.update(input_kind="int"), "input_kind must be 'float' or 'index', got 'int'"),
    (
        lambda d: d.update(sead=1),
        "unknown key 'sead' (did you mean 'seed'? the keys are input_shape, layers, loss, "
        "target, optimizer, steps, train, seed, input_kind, index_high)",
    ),
    (
        lambda d: d["layers"][2]["kwargs"].update(in_features=7),
        "shapes do not work: layer 2 (Linear(in_features=7, out_features=2)) cannot follow "
        "shape (3, 5): ",
    ),
    (
        lambda d: d["layers"][0]["kwargs"].update(bogus=1),
        "layer 0 (Linear(in_features=4, out_features=5, bogus=1)) cannot be built: ",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BAD, ids=[e for _, e in BAD])
def test_each_bad_spec_is_one_line_naming_file_and_problem(tmp_path, edit, expected):
    problem = _problem(tmp_path / "x.json", json.dumps(_edited(edit)))
    assert problem.startswith(expected) if expected.endswith(": ") else problem == expected


def test_a_type_torch_has_but_the_reference_does_not(tmp_path):
    data = _edited(lambda d: d["layers"][1].update(type="LazyLinear"))
    assert _problem(tmp_path / "x.json", json.dumps(data)) == (
        "layer 1: 'LazyLinear' is in torch.nn, but the reference does not implement it yet"
    )


def test_from_dict_checks_structure_and_leaves_type_names_to_check_known_types():
    with pytest.raises(SpecError, match=r"^missing key 'layers'"):
        NetworkSpec.from_dict({"input_shape": [1], "loss": {"type": "MSELoss"}})
    with pytest.raises(SpecError, match=r"^a spec is a JSON object .* found a string 'x'"):
        NetworkSpec.from_dict("x")  # type: ignore[arg-type]
    # a JSON round trip keeps a type that nothing implements (a plain-data spec) ...
    spec = NetworkSpec.from_dict(_edited(lambda d: d["layers"][1].update(type="Hypothetical")))
    assert spec.layers[1].type == "Hypothetical"
    # ... and check_known_types names it
    with pytest.raises(SpecError, match=r"^layer 1: unknown type 'Hypothetical'"):
        check_known_types(spec)
    # numpy integers (a spec built in code) are integers
    assert NetworkSpec.from_dict(_edited(lambda d: d.update(seed=np.int64(4)))).seed == 4


def test_replay_and_load_spec_raise_spec_file_error(tmp_path):
    with pytest.raises(SpecFileError, match=r"nowhere: no such file or folder$"):
        replay(tmp_path / "nowhere")
    (tmp_path / "spec.json").write_text("{")
    with pytest.raises(SpecFileError, match=r"spec.json: not JSON: "):
        replay(tmp_path)
    with pytest.raises(SpecFileError, match=r"spec.json: not JSON: "):
        load_spec(tmp_path / "spec.json")
    (tmp_path / "spec.json").write_text(json.dumps(GOOD))
    (tmp_path / "arrays.npz").write_text("not a zip")
    with pytest.raises(SpecFileError, match=r"arrays.npz: not a saved case's arrays: "):
        replay(tmp_path)


# -- a crash case's repro.py ---------------------------------------------------------
def _run_repro(folder):
    return subprocess.run(
        [sys.executable, "repro.py"], cwd=folder, capture_output=True, text=True, timeout=120
    )


def test_a_crash_repro_reruns_torch_and_raises_torch_own_error(tmp_path):
    """A real crash of torch's: HuberLoss(delta=0) makes torch.nn.functional.huber_loss
    raise. (The reference rejects it too, but check runs torch first, so the crash the
    report records, and the repro reruns, is torch's.)"""
    spec = NetworkSpec(
        input_shape=(3, 4),
        layers=[LayerSpec("Linear", {"in_features": 4, "out_features": 2})],
        loss=LayerSpec("HuberLoss", {"delta": 0.0}),
        seed=1,
    )
    report = check(spec, devices=["cpu"], dtypes=("float32", "float64"))
    assert report.errors and not report.mismatches
    folder = save_repro(report, tmp_path)
    with np.load(folder / "arrays.npz") as arrays:
        meta = json.loads(str(arrays["meta"]))
    assert [(e["device"], e["dtype"]) for e in meta["errors"]] == [
        ("cpu", "float32"),
        ("cpu", "float64"),
    ]
    assert meta["errors"][0]["error"].startswith("RuntimeError: huber_loss does not support")
    done = _run_repro(folder)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the check crashed on [cpu float32]" in done.stdout
    assert "torch on cpu float64 raises RuntimeError" in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last == "RuntimeError: huber_loss does not support non-positive values for delta."
    assert "torch/nn/functional.py" in done.stderr  # torch's own traceback, not a summary


def test_a_crash_that_torch_does_not_repeat_is_reported_not_reproduced(monkeypatch, tmp_path):
    """A crash planted in this process (the subprocess running repro.py has no such
    patch) must not pass for reproduced: the script says so and exits 0."""
    from harness.backends.torch import TorchBackend

    def crash(self, *args, **kwargs):
        raise RuntimeError("planted crash")

    monkeypatch.setattr(TorchBackend, "run", crash)
    spec = NetworkSpec(
        input_shape=(3, 4),
        layers=[LayerSpec("Linear", {"in_features": 4, "out_features": 2})],
        loss=LayerSpec("MSELoss"),
        seed=2,
    )
    report = check(spec, devices=["cpu"], dtypes=("float64",))
    assert report.errors == ["[cpu float64] RuntimeError: planted crash"]
    done = _run_repro(save_repro(report, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the check crashed on [cpu float64]: RuntimeError: planted crash" in done.stdout
    assert "runs without an error here: not reproduced" in done.stdout


@pytest.mark.parametrize("command", ["replay", "show"])
@pytest.mark.parametrize("content", [None, "", "{", '{"input_shape": [2, 3]}'])
def test_cli_bad_spec_file_is_one_line_and_exit_2(tmp_path, capsys, command, content):
    from harness.cli import main

    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)
    assert main([command, str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert str(path) in captured.err and "Traceback" not in captured.err
