"""Tier 1: the ``chunkwise`` command line on a tiny random SVD pipeline saved to a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from chunkwise.cli import main  # noqa: E402
from chunkwise.search.report import REPORT_FORMAT  # noqa: E402
from chunkwise.tests.conftest import PKG_PARENT  # noqa: E402
from chunkwise.tests.pure import tiny_diffusers as tiny  # noqa: E402

SIZE, FRAMES = 16, 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tiny.tiny_svd().save_pretrained(root / "svd")
    _, pil = tiny.guide_image(SIZE, SIZE, seed=2)
    pil.save(root / "first.png")
    return root


def generate(files, out, *extra):
    return main(["generate", "--model", str(files / "svd"), "--image", str(files / "first.png"), "--out", str(out),
                 "--width", str(SIZE), "--height", str(SIZE), "--device", "cpu", "--seed", "3", *extra])


def count_video_frames(path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_generate_three_chunks_writes_the_video_and_a_valid_report(files, tmp_path, capsys):
    pytest.importorskip("av")
    out = tmp_path / "long" / "video.mp4"
    rc = generate(files, out, "--chunks", "3", "--candidates", "2", "--k", "1", "--steps", "2")
    assert rc == 0, capsys.readouterr().err

    # Every chunk but the first drops its first frame (a copy of its guide).
    assert count_video_frames(out) == FRAMES + 2 * (FRAMES - 1)
    report = json.loads((tmp_path / "long" / "video.report.json").read_text())
    assert report["format"] == REPORT_FORMAT
    assert report["settings"]["chunks"] == 3 and report["settings"]["candidates"] == 2
    assert "CLIPVisionModelWithProjection" in report["settings"]["scorer"]
    assert [c["index"] for c in report["chunks"]] == [0, 1, 2]
    for c in report["chunks"]:
        assert len(c["candidates"]) == 2 and all(-1.0 <= cand["score"] <= 1.0 for cand in c["candidates"])
        assert c["chosen_seed"] == c["candidates"][c["chosen"]]["seed"]
        assert c["nfe"] == {"preview": 2 * 1, "full": 2}
    assert report["totals"]["nfe"] == 3 * (2 * 1 + 2)
    assert report["totals"]["frames"] == FRAMES + 2 * (FRAMES - 1)
    assert report["run"]["video"] == str(out) and report["run"]["host"] == "diffusers"
    err = capsys.readouterr().err
    assert "chunk 2: winner" in err and "12/12" in err  # the per-chunk lines and the progress bar

    assert main(["report", str(tmp_path / "long" / "video.report.json")]) == 0
    summary = capsys.readouterr().out
    assert "3 chunks, m=2 k=1 s=2" in summary and "chunk 2: winner" in summary and "12 model evaluations" in summary


def test_truncated_previews_resume_and_a_transformers_clip_scorer(files, tmp_path, capsys):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(hidden_size=32, projection_dim=16, num_hidden_layers=1, num_attention_heads=4,
                              image_size=32, intermediate_size=37, patch_size=8)
    CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "clip")
    CLIPImageProcessor(crop_size=32, size=32).save_pretrained(tmp_path / "clip")
    out = tmp_path / "frames"
    rc = generate(files, out, "--chunks", "2", "--candidates", "2", "--k", "1", "--steps", "3",
                  "--preview-mode", "truncated", "--scorer", "clip-transformers", "--clip-weights",
                  str(tmp_path / "clip"), "--keep-first-frame", "--quiet")
    assert rc == 0, capsys.readouterr().err
    # No suffix: a folder of PNG frames; the first frames are kept.
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in range(2 * FRAMES)]
    report = json.loads((tmp_path / "frames.report.json").read_text())
    assert report["settings"]["preview_mode"] == "truncated" and report["settings"]["resume"] is True
    assert "transformers clip" in report["settings"]["scorer"]
    assert [c["nfe"] for c in report["chunks"]] == [{"preview": 2, "full": 2}] * 2  # m*k + s - k


def test_cost_flags_batch_and_halve_the_search(files, tmp_path, capsys):
    out = tmp_path / "halved"
    rc = generate(files, out, "--chunks", "2", "--candidates", "4", "--k", "2", "--steps", "3", "--preview-mode",
                  "truncated", "--halving-k", "1", "--candidate-batch", "4", "--quiet")
    assert rc == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "halved.report.json").read_text())
    assert report["settings"]["cost"]["halving_k"] == 1 and report["settings"]["cost"]["candidate_batch"] == 4
    for c in report["chunks"]:
        # rungs 4 x 1 step then 2 extended to k=2; the winner resumes at step 2 of 3
        assert c["nfe"] == {"preview": 4 * 1 + 2 * 1, "full": 1}
        assert c["cost"]["nfe_formula"] == 4 * 2 + 3 - 2 and c["cost"]["nfe_saved"] == 9 - 7
    err = _error(capsys, generate(files, tmp_path / "v.mp4", "--halving-k", "1", "--accept-score", "0.5"))
    assert "cannot be combined" in err


def test_without_pyav_the_frames_go_to_a_png_folder_with_a_note(files, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "av", None)
    rc = generate(files, tmp_path / "v.mp4", "--chunks", "2", "--no-search", "--steps", "2", "--quiet")
    assert rc == 0
    folder = tmp_path / "v_frames"
    assert len(list(folder.glob("frame_*.png"))) == FRAMES + FRAMES - 1
    assert "PyAV is not installed" in caplog.text and "pip install av" in caplog.text
    report = json.loads((tmp_path / "v.report.json").read_text())
    assert report["settings"]["candidates"] == 1 and report["totals"]["nfe"] == 2 * 2
    assert report["run"]["video"] == str(folder)


def _error(capsys, rc) -> str:
    assert rc == 2
    return capsys.readouterr().err


def test_clear_errors_for_model_image_output_and_options(files, tmp_path, capsys):
    base = ["generate", "--image", str(files / "first.png"), "--out", str(tmp_path / "v.mp4"), "--device", "cpu"]
    err = _error(capsys, main([*base, "--model", str(tmp_path / "missing")]))
    assert "missing' does not exist" in err and "model_index.json" in err
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    err = _error(capsys, main([*base, "--model", str(tmp_path / "sd")]))
    assert "unknown pipeline type 'StableDiffusionPipeline'" in err and "StableVideoDiffusionPipeline" in err

    model = ["--model", str(files / "svd")]
    err = _error(capsys, main(["generate", *model, "--image", str(tmp_path / "no.png"), "--out", str(tmp_path / "v.mp4")]))
    assert "--image" in err and "no.png" in err and "does not exist" in err
    err = _error(capsys, main(["generate", *model, "--image", str(files / "first.png"), "--out", str(tmp_path / "v.gif")]))
    assert "'.gif'" in err and ".mp4" in err
    err = _error(capsys, main([*base, *model, "--prompt", "a cat"]))
    assert "takes no text" in err
    err = _error(capsys, main([*base, *model, "--k", "0"]))
    assert "k (preview steps) must be at least 1, got 0" in err
    # A short preview as long as the full run is refused by the engine's own rule, before the model loads.
    err = _error(capsys, main([*base, *model, "--k", "4", "--steps", "4"]))
    assert "k (preview steps) must be smaller than steps in short mode, got k=4, steps=4" in err and "lower k" in err
    err = _error(capsys, main([*base, *model, "--scorer", "clip-openclip", "--chunks", "1", "--k", "1", "--steps", "2",
                               "-q"]))
    assert "needs --clip-weights FILE" in err
    assert not (tmp_path / "v.mp4").exists()


def _quick_run(files, tmp_path) -> list:
    return ["--image", str(files / "first.png"), "--out", str(tmp_path / "v.mp4"), "--width", str(SIZE), "--height",
            str(SIZE), "--chunks", "1", "--no-search", "--steps", "1", "-q"]


def test_an_incomplete_model_folder_is_a_clean_error(files, tmp_path, capsys):
    import shutil

    args = _quick_run(files, tmp_path)
    # A component file missing (OSError from from_pretrained) names the folder, the cause and what is expected.
    broken = tmp_path / "no-scheduler"
    shutil.copytree(files / "svd", broken)
    (broken / "scheduler" / "scheduler_config.json").unlink()
    err = _error(capsys, main(["generate", "--model", str(broken), "--device", "cpu", *args]))
    assert "incomplete or damaged diffusers folder" in err and "no-scheduler" in err
    assert "scheduler_config.json" in err and "save_pretrained" in err and "Traceback" not in err
    # Damaged weights too.
    damaged = tmp_path / "damaged"
    shutil.copytree(files / "svd", damaged)
    weights = next((damaged / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    err = _error(capsys, main(["generate", "--model", str(damaged), "--device", "cpu", *args]))
    assert "incomplete or damaged diffusers folder" in err and str(damaged) in err
    assert not (tmp_path / "v.mp4").exists()


def test_a_device_this_machine_lacks_is_refused_before_loading(files, tmp_path, monkeypatch, capsys):
    import torch
    from chunkwise.search import hosts

    def no_loading(*_a, **_k):
        raise AssertionError("the weights were loaded before the device was checked")

    monkeypatch.setattr(hosts, "load_denoiser", no_loading)
    args = _quick_run(files, tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    err = _error(capsys, main(["generate", "--model", str(files / "svd"), "--device", "cuda", *args]))
    assert "device 'cuda'" in err and "CUDA is not available" in err and "available: cpu" in err
    err = _error(capsys, main(["generate", "--model", str(files / "svd"), "--device", "gpu0", *args]))
    assert "'gpu0' is not a torch device name" in err and "cpu" in err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    err = _error(capsys, main(["generate", "--model", str(files / "svd"), "--device", "cuda:1", *args]))
    assert "device 'cuda:1'" in err and "has 1 CUDA device" in err and "cuda:0" in err
    # No device asked for stays the default; backends that cannot be probed (DirectML) are left to torch.
    assert hosts.check_device(None) is None and hosts.check_device("cpu") == torch.device("cpu")
    assert hosts.check_device("privateuseone:0") == torch.device("privateuseone:0")
    assert not (tmp_path / "v.mp4").exists()


def test_missing_diffusers_says_what_to_install(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    err = _error(capsys, generate(files, tmp_path / "v.mp4", "--chunks", "1"))
    assert "pip install diffusers" in err


def test_clip_pipeline_scorer_needs_an_image_encoder(tmp_path, capsys):
    tiny.tiny_cogvideox().save_pretrained(tmp_path / "cog")
    _, pil = tiny.guide_image(16, 16)
    pil.save(tmp_path / "first.png")
    from safetensors.torch import save_file

    pe, ne = tiny.text_embeds()
    save_file({"prompt_embeds": pe, "negative_prompt_embeds": ne}, str(tmp_path / "text.safetensors"))
    args = ["generate", "--model", str(tmp_path / "cog"), "--image", str(tmp_path / "first.png"), "--out",
            str(tmp_path / "v.mp4"), "--device", "cpu", "--width", "16", "--height", "16", "--frames", "9",
            "--prompt-embeds", str(tmp_path / "text.safetensors"), "--chunks", "1", "--k", "1", "--steps", "2", "-q"]
    err = _error(capsys, main(args))
    assert "has none" in err and "clip-openclip" in err
    # The same model runs without search, text from the embeddings file.
    assert main([*args, "--no-search"]) == 0
    report = json.loads((tmp_path / "v.report.json").read_text())
    assert report["totals"]["frames"] == 9 and "cogvideox" in report["run"]["pipeline"]


def test_report_command_refuses_missing_and_foreign_files(tmp_path, capsys):
    err = _error(capsys, main(["report", str(tmp_path / "none.json")]))
    assert "does not exist" in err
    (tmp_path / "other.json").write_text(json.dumps({"format": "something/1"}))
    err = _error(capsys, main(["report", str(tmp_path / "other.json")]))
    assert "'something/1'" in err and REPORT_FORMAT in err


@pytest.mark.parametrize("module", ["chunkwise.cli", "chunkwise"])
def test_module_entry_points_print_help(module):
    env = {**os.environ, "PYTHONPATH": str(PKG_PARENT)}
    done = subprocess.run([sys.executable, "-m", module, "generate", "--help"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--candidates" in done.stdout and "--preview-mode" in done.stdout and "--scorer" in done.stdout


def test_the_install_provides_every_package_and_the_chunkwise_command():
    import importlib
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["package-dir"] == {"chunkwise": "."}
    listed = set(config["tool"]["setuptools"]["packages"])
    # Package folders under the root, leaving out the tests and what set-up and runs make (venvs, caches
    # and every other hidden folder, output/, build/).
    tops = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
            and d.name not in ("tests", "output", "build")]
    shipped = {"chunkwise"} | {
        "chunkwise." + ".".join(p.parent.relative_to(root).parts) for top in tops for p in top.rglob("__init__.py")
    }
    assert listed == shipped, f"pyproject packages {sorted(listed)} != package folders {sorted(shipped)}"
    module, func = config["project"]["scripts"]["chunkwise"].split(":")
    assert getattr(importlib.import_module(module), func) is main


def test_the_open_clip_pretrained_tag_reaches_the_encoder(files, tmp_path, monkeypatch, capsys):
    import chunkwise.scorers as scorers
    from chunkwise.search.errors import ChunkwiseError

    seen = {}

    def recorder(name, weights, **kwargs):
        seen.update(name=name, weights=weights, **kwargs)
        raise ChunkwiseError("stop here")

    monkeypatch.setattr(scorers, "OpenClipEncoder", recorder)
    err = _error(capsys, generate(files, tmp_path / "v.mp4", "--scorer", "clip-openclip", "--clip-model", "ViT-L-14",
                                  "--clip-weights", "w.safetensors", "--clip-pretrained-tag", "openai",
                                  "--chunks", "1", "--steps", "2", "--k", "1", "-q"))
    assert "stop here" in err
    assert seen["name"] == "ViT-L-14" and seen["weights"] == "w.safetensors" and seen["pretrained_tag"] == "openai"
