"""Table 3's paper profile offline: the tasks' sentences from a local folder (the notebook's
``sentences_dir``), read and checked as the hub's are, and the whole study run on stand-ins
(tiny random hub-style classifiers, real sentences with random labels: tests/standins_text.py)."""
import json
import warnings

import pandas as pd
import pytest
import torch

datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

from standins_text import SST5_LABEL_TEXT, TASK_FORMATS, sentence_sets, tiny_classifier  # noqa: E402

from psnn_lib.book.records import Record  # noqa: E402
from psnn_lib.models import minilm, sentences  # noqa: E402
from psnn_lib.paper1 import language  # noqa: E402
from psnn_lib.paper1.numbers import TABLE3  # noqa: E402

N = 64


@pytest.fixture(autouse=True, scope="module")
def _own_datasets_cache(tmp_path_factory):
    """The Arrow files ``load_dataset`` makes of the local copies go to this run's folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets-cache"))
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return sentence_sets(tmp_path_factory.mktemp("sentences"), N)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"sst2": str(tiny_classifier(root / "roberta-2", "roberta", 2)),
            "sst5": str(tiny_classifier(root / "roberta-5", "roberta", 5)),
            "cola": str(tiny_classifier(root / "bert-2", "bert", 2))}


def _write_csv(path, columns: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns).to_csv(path, index=False)


# --- the layout ---

@pytest.mark.parametrize("name", list(sentences.PAPER_TASKS))
def test_the_folder_layout_loads_with_the_hubs_columns(folder, name):
    task = sentences.PAPER_TASKS[name]
    test, train = sentences.paper_task(name, folder=folder), sentences.paper_task(name, "train", folder=folder)
    assert (folder / name / f"{task.split}{TASK_FORMATS[name]}").is_file()  # the paper's split by default
    others = [c for c in task.columns if c != task.text]
    for ds in (test, train):
        assert ds.column_names == ["text", *others] and len(ds) == N
        assert set(ds["label"]) <= set(range(task.classes)) and len(set(ds["label"])) == task.classes
        assert all(isinstance(t, str) and t for t in ds["text"])
    assert not set(test["text"]) & set(train["text"])
    if name == "sst5":
        assert list(test["label_text"]) == [SST5_LABEL_TEXT[y] for y in test["label"]]


def test_the_standins_are_reproducible(folder, tmp_path):
    again = sentence_sets(tmp_path, N)
    for name in sentences.PAPER_TASKS:
        file = f"{sentences.PAPER_TASKS[name].split}{TASK_FORMATS[name]}"
        assert (again / name / file).read_bytes() == (folder / name / file).read_bytes()


# --- clear errors ---

def test_a_missing_file_names_the_paths_looked_for(tmp_path):
    with pytest.raises(sentences.DatasetMissing) as err:
        sentences.paper_task("cola", folder=tmp_path)
    for suffix in (".csv", ".parquet", ".jsonl"):
        assert str(tmp_path / "cola" / f"validation{suffix}") in str(err.value)
    assert "sentence, label, idx" in str(err.value)
    with pytest.raises(sentences.DatasetMissing, match="is not a folder"):
        sentences.paper_task("sst5", folder=tmp_path / "nowhere")


def test_two_formats_for_one_split_is_an_error(tmp_path):
    rows = {"sentence": ["a fine film", "a dull film"], "label": [1, 0], "idx": [0, 1]}
    _write_csv(tmp_path / "sst2" / "validation.csv", rows)
    pd.DataFrame(rows).to_json(tmp_path / "sst2" / "validation.jsonl", orient="records", lines=True)
    with pytest.raises(ValueError, match=r"validation split is in 2 files, .*validation.csv, .*validation.jsonl: "
                                         "keep one"):
        sentences.paper_task("sst2", folder=tmp_path)


@pytest.mark.parametrize("columns, message", [
    ({"sentence": ["a", "b"], "label": [0, 2], "idx": [0, 1]}, r"labels from 0 to 2, outside 0 \.\. 1"),
    ({"sentence": ["a", "b"], "label": [-1, -1], "idx": [0, 1]}, "-1: a split without labels"),
    ({"sentence": ["a", "b"], "label": ["good", "bad"], "idx": [0, 1]}, "labels must be integers 0 .. 1"),
    ({"sentence": ["a", "b"], "label": [1, None], "idx": [0, 1]}, "labels must be integers"),
    ({"text": ["a", "b"], "label": [0, 1]}, r"has no column 'sentence' \(it has text, label; "
                                            "sst2's are sentence, label, idx\\)"),
    ({"sentence": ["a", "b"], "idx": [0, 1]}, "has no column 'label'"),
    ({"sentence": ["a", None], "label": [0, 1], "idx": [0, 1]}, "1 empty cells in its 'sentence' column"),
])
def test_bad_columns_and_labels_are_clear_errors(tmp_path, columns, message):
    _write_csv(tmp_path / "sst2" / "train.csv", columns)
    with pytest.raises(ValueError, match=message) as err:
        sentences.paper_task("sst2", "train", folder=tmp_path)
    assert str(tmp_path / "sst2" / "train.csv") in str(err.value)  # names the file


def test_the_hub_path_checks_the_labels_too(monkeypatch):
    """GLUE's test split has no labels (-1): loaded from the hub, it is refused with the reason."""
    hidden = datasets.Dataset.from_dict(
        {"sentence": ["a", "b"], "label": [-1, -1], "idx": [0, 1]},
        features=datasets.Features({"sentence": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["negative", "positive"]),
                                    "idx": datasets.Value("int32")}))
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: asked.append((a, k)) or hidden)
    with pytest.raises(ValueError, match=r"glue/sst2 test has labels from -1 to -1.*GLUE's test splits"):
        sentences.paper_task("sst2", "test")
    assert asked == [(("glue", "sst2"), {"split": "test"})]


def test_paper_tasks_name_every_missing_file(tmp_path, checkpoints):
    with pytest.raises(sentences.DatasetMissing) as err:
        language.paper_tasks(checkpoints, 8, 16, folder=tmp_path)
    text = str(err.value)
    assert f"the local copy {tmp_path}" in text
    for name in sentences.PAPER_TASKS:
        assert str(tmp_path / name / f"{sentences.PAPER_TASKS[name].split}.csv") in text


# --- the stand-in classifiers and the whole study ---

def test_the_roberta_standin_takes_the_longest_input_and_padding(checkpoints, folder):
    """RoBERTa's positions run from its padding index + 1 (the BERT tokenizer's padding id 0):
    its position table holds the tokenizer's longest input, and a sentence padded in a batch
    computes as it does alone."""
    model, tok = minilm.hub_classifier(checkpoints["sst5"])
    assert type(model.model).__name__ == "RobertaForSequenceClassification" and model.model.config.num_labels == 5
    texts = list(sentences.paper_task("sst5", folder=folder)["text"])
    longest = tok([" ".join(texts)], truncation=True, max_length=tok.model_max_length, return_tensors="pt")
    assert longest["input_ids"].shape[1] == tok.model_max_length
    batch = tok(texts[:2], padding=True, return_tensors="pt")
    assert not batch["attention_mask"].all()  # one of them is padded
    with torch.no_grad():
        assert model(**longest).logits.shape == (1, 5)
        together = model(**batch).logits
        alone = torch.cat([model(**tok([t], return_tensors="pt")).logits for t in texts[:2]])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.fixture(scope="module")
def runs(checkpoints, folder):
    tasks = language.paper_tasks(checkpoints, n_calibration=8, n_test=16, folder=folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [language.table3_run(task, dy=0.01, fs_K=8, sj_steps=2, n_peer=4) for task in tasks]


def test_table3_runs_on_the_standins(runs, checkpoints):
    assert [run.task.paper_key for run in runs] == ["sst2", "sst5", "cola"]
    for run in runs:
        ps, fs, sj = run.rows
        assert run.task.title == f"{checkpoints[run.task.paper_key]}, {run.task.paper_key}"
        assert run.task.calibration.sentences == 8 and run.task.test.sentences == 16
        assert ps["method"] == "PS" and fs["method"] == "FS (K = 8)" and ps["sentences"] == fs["sentences"] == 16
        assert all(isinstance(r[k], float) for r in (ps, fs) for k in ("ANN acc", "SNN acc", "loss", "agreement"))
        assert "not run" in sj["note"]  # SpikingJelly's adapter takes this project's BERT classifier only
        assert run.report.rows and run.sites
    assert language.rows_frame([r for run in runs for r in run.rows]).shape[0] == 9


def test_table3_claims_of_the_standin_runs(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_RESULTS_DIR", str(tmp_path))
    record = Record("table3_transformers", "paper", {}, seed=0, paper=1, target="Table 3")
    language.table3_claims(record, runs)
    expected = {"sst2, PS: loss (points)", "sst2, PS: ANN accuracy", "sst2: PS loses less than FS",
                "sst2, FS (K = 16; ours at K = 8): loss (points)",  # the paper's K, and the run's
                "sst5, PS: loss (points)", "sst5, PS: ANN accuracy", "sst5: PS loses less than FS",
                "sst5, FS (K = 16; ours at K = 8): loss (points)", "cola, PS: loss (points)", "cola, PS: ANN accuracy"}
    assert {item.name for item in record.items} == expected
    assert all(item.status != "not run" and item.ours is not None for item in record.items)  # every task ran
    claims = {item.name: item for item in record.items}
    for run in runs:
        ps, fs = run.rows[:2]
        assert claims[f"{run.task.paper_key}, PS: loss (points)"].ours == round(ps["loss"], 3)
        assert claims[f"{run.task.paper_key}, PS: ANN accuracy"].ours == round(ps["ANN acc"], 2)
    record.save()
    saved = json.loads((tmp_path / "table3_transformers.json").read_text())
    assert saved["profile"] == "paper" and len(saved["results"]) == len(expected)
    assert sum(saved["summary"].values()) == len(expected) and saved["summary"]["not run"] == 0
    assert {key for key in TABLE3} == {item.name.split(",")[0].split(":")[0] for item in record.items}
