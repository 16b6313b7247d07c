"""The doctor agrees with the harness on the zoo's CNN pair at depth 56 (see `test_doctor_zoo`):
plain-56's raw gradient norm explodes, ResNet-56 is healthy. In a file of its own because the two
56-layer nets are the slowest models the doctor's tests load."""

import pytest

from test_doctor_zoo import check_fresh

CNN = [
    ("plain_56_1d", ["--dataset", "mnist1d"], "exploding", "residual"),
    ("resnet_56_1d", ["--dataset", "mnist1d"], "healthy", None),
]


@pytest.mark.parametrize("name, data, expected, first_fix", CNN, ids=[c[0] for c in CNN])
def test_fresh_zoo_cnns_get_the_harness_verdict(name, data, expected, first_fix, tmp_path, capsys):
    check_fresh(name, data, expected, first_fix, tmp_path, capsys)
