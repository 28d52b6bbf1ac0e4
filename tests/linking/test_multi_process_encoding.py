"""Issue 21: ``DictionaryIndex.build(devices=[...])`` encodes with sentence-transformers'
multi-process pool; two CPU processes give what one process gives."""

from __future__ import annotations

import numpy as np
import pytest

from sapbert_st.linking import DictionaryIndex
from sapbert_st.linking.encoding import encode_texts


@pytest.mark.slow
def test_two_cpu_processes_build_the_same_index(tiny_model, tmp_path, monkeypatch):
    words = ["heart", "attack", "fever", "acute", "chronic", "infection", "type", "of", "with"]
    rng = np.random.default_rng(0)
    names = [" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(700)]
    ids = [f"C{i}" for i in range(len(names))]
    one = DictionaryIndex.build(tiny_model, names, ids, chunk_size=256)
    started = []
    start_pool = type(tiny_model).start_multi_process_pool

    def spy(self, target_devices=None, *args, **kwargs):
        started.append(list(target_devices))
        return start_pool(self, target_devices, *args, **kwargs)

    monkeypatch.setattr(type(tiny_model), "start_multi_process_pool", spy)
    two = DictionaryIndex.build(tiny_model, names, ids, chunk_size=256, devices=["cpu", "cpu"],
                                embeddings_path=tmp_path / "names.npy")
    assert isinstance(two.embeddings, np.memmap)  # written in order into the memmap
    np.testing.assert_allclose(two.embeddings, one.embeddings, rtol=0, atol=1e-5)
    mentions = ["heart attack", "chronic fever", "infection"]
    assert started == [["cpu", "cpu"]]
    for hits_two, hits_one in zip(two.search(mentions, k=5), one.search(mentions, k=5)):
        assert [h["row"] for h in hits_two] == [h["row"] for h in hits_one]
        np.testing.assert_allclose([h["score"] for h in hits_two],
                                   [h["score"] for h in hits_one], atol=1e-5)


@pytest.mark.parametrize("devices", ["cpu", [], ["cpu", ""], [0]])
def test_devices_are_checked(tiny_model, devices):
    with pytest.raises(ValueError, match="devices: expected a non-empty list of device names"):
        encode_texts(tiny_model, ["fever"], devices=devices)


def test_devices_refuse_autocast(tiny_model):
    with pytest.raises(ValueError, match="compute_dtype: 'bfloat16' runs under torch.autocast"):
        encode_texts(tiny_model, ["fever"], devices=["cpu", "cpu"], compute_dtype="bfloat16")
