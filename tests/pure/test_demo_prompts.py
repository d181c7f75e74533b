"""The demo's prompts and real-weights checks (scripts/demo.py), without a server."""

from __future__ import annotations

import json

import pytest
from chunkwise.scripts import demo


def test_wan22_tiny_prompt_loads_both_experts_and_switches_halfway():
    prompt = demo.tiny_prompt("wan22", "start.png", {"steps": 4})
    unets = [n["inputs"]["unet_name"] for n in prompt.values() if n["class_type"] == "UNETLoader"]
    assert unets == [demo.TINY_WAN_UNET] * 2
    binding = prompt[demo.find(prompt, "ChunkwiseI2VWan")]["inputs"]
    assert binding["steps"] == 4 and binding["switch_step"] == 2 and isinstance(binding["model_low_noise"], list)
    real = demo.real_prompt("wan22", "start.png", {"steps": 30})
    assert real[demo.find(real, "ChunkwiseI2VWan")]["inputs"]["switch_step"] == 15
    wan21 = demo.real_prompt("wan", "start.png", {"steps": 30})
    assert wan21[demo.find(wan21, "ChunkwiseI2VWan")]["inputs"]["switch_step"] == 0  # one model: no switch


@pytest.mark.parametrize("workflow", ["svd", "wan", "wan22"])
def test_real_weights_are_checked_by_the_workflows_standard_names(workflow, tmp_path):
    names = {m["name"]: m["directory"] for m in demo.required_models(workflow)}
    assert names, "the workflow carries no model entries"
    args = demo.parse_args(["--workflow", workflow, "--models", str(tmp_path)])
    with pytest.raises(demo.DemoError) as err:
        demo.choose_models(args)
    for name in names:
        assert name in str(err.value) and "https://" in str(err.value)
    for name, directory in names.items():
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
        (tmp_path / directory / name).write_bytes(b"")
    assert demo.choose_models(args) == tmp_path.resolve()
    prompt = demo.real_prompt(workflow, "start.png", {"chunks": 7})
    loop = prompt[demo.find(prompt, "ChunkwiseChunkLoop")]["inputs"]
    assert loop["chunks"] == 7
    file_inputs = [v for n in prompt.values() for k, v in n["inputs"].items() if k.endswith("_name")]
    assert set(names) <= set(file_inputs)


def test_toy_prompt_gives_both_loops_one_image_and_seed_and_only_search_its_candidates():
    from chunkwise.scripts import demo_toy

    prompt = demo_toy.toy_prompt(demo.load_prompt("toy"), "mine.png",
                                 {"chunks": 3, "seed": 9, "candidates": 6, "k": 3, "steps": 5})
    loops = {n["_meta"]["title"]: n["inputs"] for n in prompt.values() if n["class_type"] == "ChunkwiseChunkLoop"}
    naive, search = loops[demo_toy.LOOP_TITLES["naive"]], loops[demo_toy.LOOP_TITLES["search"]]
    assert (naive["chunks"], naive["seed"], naive["candidates"], naive["search"]) == (3, 9, 1, False)
    assert (search["chunks"], search["seed"], search["candidates"], search["k"], search["search"]) == (3, 9, 6, 3, True)
    assert naive["image"] == search["image"] and naive["i2v"] == search["i2v"]
    assert prompt[demo.find(prompt, "LoadImage")]["inputs"]["image"] == "mine.png"
    assert prompt[demo.find(prompt, "ChunkwiseToyWorld")]["inputs"]["steps"] == 5
    evaluations = [n["inputs"] for n in prompt.values() if n["class_type"] == "ChunkwiseEvaluate"]
    assert {e["frames_per_chunk"] for e in evaluations} == {demo_toy.toy_size(prompt)[2]}


def test_the_drift_table_names_both_last_chunk_figures():
    from chunkwise.scripts import demo_toy

    def ev(drifts):
        return {"chunks": [{"index": i, "drift": {"colour": d}, "scores": {"temporal_flickering": 0.97}}
                           for i, d in enumerate(drifts)], "left_out": {"subject_consistency": "no DINO"}}

    table = demo_toy.drift_table(ev([5.0, 9.0, 14.5]), ev([5.0, 6.0, 6.25]))
    assert "last chunk (3): colour drift naive 14.50, search 6.25" in table
    assert len(table.splitlines()) == 1 + 3 + 2 and "subject_consistency" in table


def test_real_runs_are_evaluated_with_the_encoders_the_models_folder_holds(tmp_path):
    from chunkwise.scorers.evaluation import EVAL_FORMAT
    from chunkwise.search import LoopSettings, SearchSettings, run_chunks
    from chunkwise.search.sinks import DiskSink
    from chunkwise.tests.pure.toys import MeanColourScorer, ToyDenoiser, image

    models = tmp_path / "models"
    (models / "clip_vision" / "open_clip_ViT-B-32_openai.safetensors").parent.mkdir(parents=True)
    (models / "clip_vision" / "open_clip_ViT-B-32_openai.safetensors").write_bytes(b"")
    (models / "clip_vision" / "clip_vision_h.safetensors").write_bytes(b"")
    (models / "aesthetic").mkdir()
    (models / "aesthetic" / "sa_0_4_vit_l_14_linear.pth").write_bytes(b"")
    found = demo.find_encoders(models)
    assert {k: v.name for k, v in found.items()} == {"--clip-b32": "open_clip_ViT-B-32_openai.safetensors",
                                                      "--aesthetic-head": "sa_0_4_vit_l_14_linear.pth"}
    # A run folder, evaluated with a models folder that holds no encoder: the model-free dimensions only.
    settings = LoopSettings(chunks=2, seed=1, search=SearchSettings(candidates=2, k=1, steps=2)).validate()
    run_chunks(ToyDenoiser(frames=4), MeanColourScorer(), image(seed=1), settings, sink=DiskSink(tmp_path, "run"))
    from PIL import Image

    Image.fromarray((image(seed=1)[0].numpy() * 255).astype("uint8")).save(tmp_path / "start.png")
    written = demo.evaluate_real_run(tmp_path / "run", tmp_path / "empty", tmp_path / "start.png", tmp_path, "demo")
    ev = json.loads(written["eval"].read_text())
    assert ev["format"] == EVAL_FORMAT and ev["drift"]["reference"] == "input image" and len(ev["chunks"]) == 2
    assert written["eval_plot"].stat().st_size > 1000
