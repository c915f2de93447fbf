"""Work two notebooks must not do at once: a checkpoint manifest rewritten by two processes
keeps both entries, and is never left half written."""
import json
import threading
import time

import torch

from psnn_lib import file_lock
from psnn_lib.models import checkpoints


def test_two_saves_at_once_keep_both_manifest_entries(tmp_path, monkeypatch):
    """Each save reads the manifest, then (slowed here) writes it back with its entry: without
    the lock the second write drops the first entry."""
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path / "cache"))
    manifest = tmp_path / "data" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}\n")
    read = checkpoints.manifest_entries

    def slow_read(path):
        entries = read(path)
        time.sleep(0.3)  # the other save arrives meanwhile
        return entries

    monkeypatch.setattr(checkpoints, "manifest_entries", slow_read)
    threads = [threading.Thread(target=checkpoints.save_state,
                                args=(name, {"w": torch.ones(2)}, {"recipe": name}, manifest))
               for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = json.loads(manifest.read_text())
    assert sorted(entries) == ["a", "b"] and entries["a"]["recipe"] == "a"
    assert [p.name for p in manifest.parent.iterdir() if p.is_file()] == ["manifest.json"]  # no temporary left
    assert file_lock.lock_file_for(manifest).exists()  # the lock lives in the cache, not beside the data


def test_a_lock_that_cannot_be_made_runs_the_block_unlocked(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    ran = []
    with file_lock.exclusive(blocker / "x.lock"):
        ran.append(1)
    assert ran == [1]
