"""The datasets shipped in datasets/ (one per machine that timed them): loadable, as large as
promised, and each card's figures are the ones its tables give."""

from __future__ import annotations

import hashlib
import json

import pytest

from featurize import schema
from featurize.card import card_figures, render_card
from tests.conftest import ROOT

REFERENCE = ROOT / "datasets/reference"
SHIPPED = sorted(d for d in (ROOT / "datasets").iterdir() if (d / "card.json").exists())


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((REFERENCE / "card.json").read_text())


def test_reference_dataset_loads_and_is_as_large_as_promised(card) -> None:
    data = schema.read_dataset(REFERENCE)
    assert set(data) == set(schema.TABLE_NAMES)
    origins = dict(data["programs"].group_by("origin").len().iter_rows())
    assert origins["random"] >= 250 and origins["zoo"] >= 7
    assert card["schedules_labelled_featurized"] >= 4000
    # Every training sample carries the Adams2019 featurization and records its sampler's parameters.
    assert data["schedules"]["has_featurization"].all()
    params = [json.loads(p) for p in data["schedules"]["sampler_params"]]
    assert all("beam_size" in p and "random_dropout" in p for p in params)


def rounded(obj):
    """Floats to 9 significant digits: polars' parallel aggregations differ in the last bits."""
    if isinstance(obj, float):
        return float(f"{obj:.9g}")
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


@pytest.mark.parametrize("dataset", SHIPPED, ids=lambda d: d.name)
def test_card_figures_match_the_tables(dataset) -> None:
    card = json.loads((dataset / "card.json").read_text())
    for key, value in card_figures(dataset).items():
        assert json.dumps(rounded(card[key]), sort_keys=True) == json.dumps(rounded(value), sort_keys=True), key
    # The README is the card rendered from those figures, and says the size on disk.
    assert (dataset / "README.md").read_text() == render_card(card)


def test_two_machines_ship_each_with_its_facts() -> None:
    machines = [schema.read_table(d / "machines.parquet", "machines").row(0, named=True) for d in SHIPPED]
    assert len({m["machine_id"] for m in machines}) >= 2
    assert {m["vector_bits"] for m in machines} >= {256, 512}
    assert all(m["calibration_s"] and m["calibration_s"] > 0 for m in machines)


@pytest.mark.parametrize("dataset", SHIPPED, ids=lambda d: d.name)
def test_card_says_the_size_on_disk(dataset) -> None:
    card = json.loads((dataset / "card.json").read_text())
    assert card["size_bytes"] == {t: schema.table_path(dataset, t).stat().st_size for t in schema.dataset_table_names(dataset)}


def test_the_sampler_weights_are_the_file_the_card_describes(card) -> None:
    # The sampler weights shipped beside the tables are the file the card describes.
    weights = (REFERENCE / card["sampler_weights"]["file"]).read_bytes()
    assert len(weights) == card["sampler_weights"]["bytes"]
    assert hashlib.sha256(weights).hexdigest() == card["sampler_weights"]["sha256"]


def test_card_states_the_sampler_spread_targets(card) -> None:
    spread = card["spread"]
    assert spread["spread_median"] >= 5
    assert set(spread["by_sampler"]) == set(card["sampling"]["samplers"])
