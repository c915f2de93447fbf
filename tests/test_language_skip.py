"""Table 3 at the paper profile: a task without a checkpoint is skipped visibly, never silently."""
import pytest

from psnn_lib.book.records import Record
from psnn_lib.paper1 import language


def test_a_task_without_a_checkpoint_is_said_to_be_skipped(monkeypatch, capsys):
    made = []

    def fake_task(key, checkpoint, n_calibration, n_test, device, folder=None):
        made.append((key, checkpoint))
        return key

    monkeypatch.setattr(language, "paper_task", fake_task)
    tasks = language.paper_tasks({"sst2": "a/roberta", "sst5": "", "cola": "b/bert"}, 8, 8)
    assert tasks == ["sst2", "cola"] and made == [("sst2", "a/roberta"), ("cola", "b/bert")]
    out = capsys.readouterr().out
    assert out.startswith("sst5: not run: no fine-tuned checkpoint is named")
    assert "set sst5_model to a hub checkpoint fine-tuned on sst5 (5 labels; the paper's: RoBERTa-large)" in out
    assert "sst2" not in out and "cola" not in out


def test_no_checkpoint_at_all_is_an_error(monkeypatch):
    monkeypatch.setattr(language, "paper_task", lambda *a: pytest.fail("no task should be loaded"))
    with pytest.raises(ValueError, match="name at least one of sst2_model, sst5_model, cola_model"):
        language.paper_tasks({"sst2": "", "sst5": "", "cola": ""}, 8, 8)


def test_a_skipped_task_is_recorded_as_not_run_with_the_parameter_to_set():
    record = Record("table3_transformers", "paper", {}, seed=0, paper=1, target="Table 3")
    language.table3_claims(record, [])
    sst5 = [item for item in record.items if item.name.startswith("sst5")]
    assert sst5 and all(item.status == "not run" for item in sst5)
    assert all("sst5_model naming one" in item.note for item in sst5)
