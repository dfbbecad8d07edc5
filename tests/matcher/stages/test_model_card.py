"""The model card is rendered whole from the folder's data (training statistics, validation report)."""

from include.matcher.foundations import layout
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.approval import record_approval
from include.matcher.stages.model_card import refresh_model_card, render_model_card
from include.matcher.stages.report import model_card_section
from include.matcher.stages.validation_report import read_report
from tests.matcher.stages.test_approval import put_report

STATS = {
    "config": {"base_model": "all-MiniLM-L6-v2", "loss": "multiple_negatives", "epochs": 3, "max_seq_length": 512},
    "examples": 1192,
    "train_seconds": 2017.5,
    "examples_per_second": 1.77,
    "device": "cpu",
    "best_checkpoint": "checkpoint-224",
}


def test_a_freshly_trained_model_s_card_says_how_it_was_trained_and_quotes_no_cv():
    card = render_model_card(STATS)
    assert card.startswith("---\nlibrary_name: sentence-transformers\n") and card.endswith("categories.\n")
    assert "fine-tuned from `all-MiniLM-L6-v2` with the `multiple_negatives` loss" in card
    assert "1192 training examples, 2017.5 s on cpu (1.77 examples/s)" in card
    assert "best validation checkpoint: checkpoint-224" in card
    assert "`epochs=3`, `loss=multiple_negatives`, `max_seq_length=512`" in card
    assert "## Matcher evaluation" not in card and "## Human oversight" not in card


def test_the_card_is_its_data_rendered_again_whatever_wrote_it_last(storage, locations):
    """Validation and each approval render the whole card from the training statistics and the report:
    a second answer replaces the first, and the card is exactly what the data renders to."""
    report_uri = put_report(storage, locations)
    model = layout.Model(report_uri.rsplit("/", 1)[0])
    storage.put_json(model.training_config, STATS)
    refresh_model_card(model.uri, storage)  # what validate does once the report is written
    report = read_report(storage.get_bytes(report_uri))
    card = storage.get_bytes(model.card).decode()
    assert card == render_model_card(STATS, report)
    assert model_card_section(report).rstrip() in card and "## Human oversight" not in card

    record_approval(report_uri, storage, "rejected", "alice")
    record_approval(report_uri, storage, "approved", "bob")
    card = storage.get_bytes(model.card).decode()
    assert card == render_model_card(STATS, read_report(storage.get_bytes(report_uri)))
    assert card.count("## Human oversight") == 1 and "Promotion approved by bob at " in card and "alice" not in card
    assert card.count("## Matcher evaluation") == 1 and "1192 training examples" in card


def test_a_card_without_training_statistics_still_renders_its_evaluation(storage, locations):
    report_uri = put_report(storage, locations)
    card_uri = refresh_model_card(report_uri.rsplit("/", 1)[0], storage)
    card = storage.get_bytes(card_uri).decode()
    assert card_uri == join_uri(report_uri.rsplit("/", 1)[0], "README.md")
    assert "fine-tuned from `?`" in card and "## Matcher evaluation" in card
