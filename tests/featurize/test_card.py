"""The reference dataset shipped in datasets/reference: loadable, as large as promised, and
its card's figures are the ones its tables give."""

from __future__ import annotations

import hashlib
import json

import pytest

from featurize import schema
from featurize.card import card_figures, render_card
from tests.conftest import ROOT

REFERENCE = ROOT / "datasets/reference"


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


def test_card_figures_match_the_tables(card) -> None:
    for key, value in card_figures(REFERENCE).items():
        assert json.dumps(rounded(card[key]), sort_keys=True) == json.dumps(rounded(value), sort_keys=True), key
    # The README is the card rendered from those figures, and says the size on disk.
    assert (REFERENCE / "README.md").read_text() == render_card(card)
    assert card["size_bytes"] == {t: schema.table_path(REFERENCE, t).stat().st_size for t in schema.TABLE_NAMES}
    # The sampler weights shipped beside the tables are the file the card describes.
    weights = (REFERENCE / card["sampler_weights"]["file"]).read_bytes()
    assert len(weights) == card["sampler_weights"]["bytes"]
    assert hashlib.sha256(weights).hexdigest() == card["sampler_weights"]["sha256"]


def test_card_states_the_sampler_spread_targets(card) -> None:
    spread = card["spread"]
    assert spread["spread_median"] >= 5
    assert set(spread["by_sampler"]) == set(card["sampling"]["samplers"])
