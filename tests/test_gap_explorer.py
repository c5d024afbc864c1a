"""The gap explorer (explore_gap, its figures, gap.json/gap.html, the ``gap`` command) against known answers."""
import json
import math

import numpy as np
import pytest
import torch

import cmkd_lab
from cmkd_lab import explore_gap, explore_run_gap
from cmkd_lab.cli import main
from cmkd_lab.diagnostics import linear_cka, linear_transfer, procrustes_residual, retrieval_recall

FAST = dict(n_permutations=50, cv=3)


def _blobs(n=240, d=8, k=4, seed=0, spread=1.5):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(size=(k, d)) * spread
    return centres[y] + rng.normal(size=(n, d)), y


def _rotation(d, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_the_gap_explorer_is_exported():
    assert "explore_gap" in cmkd_lab.__all__ and "explore_run_gap" in cmkd_lab.__all__


@pytest.fixture(scope="module")
def identical():
    z, y = _blobs()
    return z, y, explore_gap(z, z.copy(), y_a=y, y_b=y.copy(), names=("left", "right"), **FAST)


def test_identical_sets_have_no_gap(identical):
    z, y, r = identical
    d = r["distance"]
    assert abs(d["mmd"]["mmd2"]) < 0.02 and d["mmd"]["p_value"] > 0.5
    assert d["w1"]["w1"] == pytest.approx(0.0, abs=1e-6)
    assert abs(d["sinkhorn"]["divergence"]) < 1e-6
    assert d["centroid"]["centroid_gap"] == pytest.approx(0.0, abs=1e-12)
    assert d["centroid"]["mean_cos"] == pytest.approx(1.0)
    assert r["gap_vector"]["gap"]["norm"] == pytest.approx(0.0, abs=1e-12)
    assert r["gap_vector"]["gap"]["shift_share_w2"] is None  # W2 = 0: no split to report
    assert r["classes"]["purity"]["purity"] == pytest.approx(1.0)
    assert r["classes"]["purity"]["purity_matched"] == pytest.approx(1.0)
    assert r["classes"]["prior_tv"]["tv"] == 0.0
    assert r["classes"]["per_class_mmd"]["n_rejected"] == 0
    assert "not distinguishable" in r["headline"] and "no evidence" in d["mmd"]["reading"]


def test_identical_sets_transfer_equals_own_accuracy(identical):
    _, _, r = identical
    t = r["transfer"]
    own = t["own"]
    assert 0.5 < own["left"] < 1.0  # not a trivial problem
    for src, dst in (("left", "right"), ("right", "left")):
        assert t["transfer"][f"{src}→{dst}"]["raw"] == pytest.approx(own[src], abs=1e-12)
        assert t["transfer"][f"{src}→{dst}"]["centred"] == pytest.approx(own[src], abs=1e-12)
    assert np.allclose(t["matrix_raw"], own["left"])


def test_result_is_json_and_every_measure_is_read(identical):
    _, _, r = identical
    back = json.loads(json.dumps(r, allow_nan=False))
    assert back["names"] == ["left", "right"] and back["dim"] == 8
    for sec in ("distance", "gap_vector", "classes"):
        for name, m in r[sec].items():
            assert isinstance(m["reading"], str) and m["reading"].endswith("."), (sec, name)
    assert len(r["readings"]) >= 10 and all(isinstance(s, str) for s in r["readings"])
    assert set(r["timings_s"]) >= {"mmd", "exact_ot", "sinkhorn", "centred", "classes", "transfer", "total"}
    assert r["subsample"]["applied"] is False and r["notes"] == []


def test_a_pure_shift_is_recovered_and_centring_removes_it():
    z, y = _blobs(seed=3)
    shift = np.linspace(-2.0, 3.0, z.shape[1])
    r = explore_gap(z, z + shift, y_a=y, y_b=y, **FAST)
    gv = r["gap_vector"]
    assert np.allclose(gv["gap"]["vector"], shift, atol=1e-4)
    assert gv["gap"]["norm"] == pytest.approx(np.linalg.norm(shift))
    assert gv["gap"]["shift_share_w2"] == pytest.approx(1.0, abs=1e-6)
    assert r["distance"]["mmd"]["p_value"] < 0.05
    assert abs(gv["centred"]["mmd2"]) < 0.02 and gv["centred"]["w1"] == pytest.approx(0.0, abs=1e-6)
    assert gv["centred"]["w1_reduction"] == pytest.approx(1.0, abs=1e-6)
    assert "mostly a shift" in gv["gap"]["reading"]
    t = r["transfer"]["transfer"]["A→B"]
    assert t["centred"] == pytest.approx(r["transfer"]["own"]["A"], abs=1e-12)  # the shift was all of it


def test_a_change_of_shape_is_not_a_shift():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 6))
    r = explore_gap(z, 3.0 * rng.normal(size=(300, 6)), **FAST)  # same mean, three times the spread
    assert r["gap_vector"]["gap"]["shift_share_w2"] < 0.05
    assert r["gap_vector"]["centred"]["p_value"] < 0.05 and "mostly a change of shape" in r["readings"][5]


def test_a_rotation_with_pairs_is_found():
    z, y = _blobs(n=200, d=8, seed=5)
    zb = z @ _rotation(8)
    r = explore_gap(z, zb, y_a=y, y_b=y, pairs=True, **FAST)
    p = r["paired"]
    assert p["procrustes"]["residual"] < 1e-8 and p["procrustes"]["residual_heldout"] < 1e-8
    assert p["cka"]["cka"] == pytest.approx(1.0)
    rec = p["retrieval"]["recall"]["orthogonal map"]
    assert rec["A→B"]["@1"] == 1.0 and rec["B→A"]["@1"] == 1.0
    assert rec["A→B"]["@10"] == 1.0
    assert p["retrieval"]["recall"]["as is"]["A→B"]["@1"] < 0.5  # the raw spaces do not line up
    assert p["n_pairs"] == 200 and p["how"] == "rows"
    assert "rotation of each other" in p["procrustes"]["reading"]


def test_pairs_as_an_index_array_match_rows():
    z, _ = _blobs(n=120, d=6, seed=2)
    zb = z @ _rotation(6)
    perm = np.random.default_rng(0).permutation(120)
    pairs = np.stack([perm, np.arange(120)], 1)  # row perm[j] of A is row j of the shuffled B
    r1 = explore_gap(z, zb, pairs=True, **FAST)
    r2 = explore_gap(z, zb[perm], pairs=pairs, **FAST)
    assert r2["paired"]["how"] == "index array"
    assert r2["paired"]["cka"]["cka"] == pytest.approx(r1["paired"]["cka"]["cka"])
    assert r2["paired"]["procrustes"]["residual"] == pytest.approx(r1["paired"]["procrustes"]["residual"], abs=1e-9)


def test_relabelling_b_keeps_matched_purity():
    z, y = _blobs(seed=7, spread=4.0)
    sigma = np.array([2, 0, 3, 1])  # a derangement of the 4 classes
    r0 = explore_gap(z, z.copy(), y_a=y, y_b=y, **FAST)
    r1 = explore_gap(z, z.copy(), y_a=y, y_b=sigma[y], **FAST)
    p0, p1 = r0["classes"]["purity"], r1["classes"]["purity"]
    assert p1["purity_matched"] == pytest.approx(p0["purity_matched"]) == pytest.approx(1.0)
    assert p1["purity"] == pytest.approx(0.0)
    assert p1["matching"] == [str(k) for k in sigma]  # class k of A goes to class σ(k) of B
    assert "sends some of them to another class" in p1["reading"]


def test_subsampling_is_stated_stratified_and_seeded():
    z, y = _blobs(n=400, k=4)
    r = explore_gap(z, z + 0.5, y_a=y, y_b=y, max_points=100, seed=3, **FAST)
    s = r["subsample"]
    assert s["applied"] and s["a"] == 100 and s["b"] == 100 and s["stratified"]
    assert "100 of 400" in s["reading"] and "stratified by class" in s["reading"]
    assert r["gap_vector"]["gap"]["norm"] == pytest.approx(0.5 * math.sqrt(8))  # full data, not the subsample
    again = explore_gap(z, z + 0.5, y_a=y, y_b=y, max_points=100, seed=3, **FAST)
    assert again["distance"]["mmd"] == r["distance"]["mmd"] and again["distance"]["w1"] == r["distance"]["w1"]


def test_torch_inputs_and_string_labels():
    z, y = _blobs(n=120)
    names = np.array(["cat", "dog", "eel", "fox"])[y]
    r = explore_gap(torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(z + 1.0), y_a=names, y_b=names,
                    **FAST)
    assert r["class_names"] == ["cat", "dog", "eel", "fox"] and r["num_classes"] == 4
    assert [c["name"] for c in r["classes"]["per_class_mmd"]["classes"]] == ["cat", "dog", "eel", "fox"]


def test_unlabelled_unpaired_and_a_degenerate_mean():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 3))
    z -= z.mean(0)  # mean exactly at the origin: the cosine between means is undefined
    r = explore_gap(z, z + 1.0, **FAST)
    assert r["classes"] is None and r["transfer"] is None and r["paired"] is None and r["plan"] is None
    assert r["distance"]["centroid"]["mean_cos"] is None
    assert "not shown" in r["distance"]["centroid"]["reading"]
    json.dumps(r, allow_nan=False)


def test_normalize_puts_rows_on_the_sphere():
    z, _ = _blobs(n=80)
    r = explore_gap(z, 5.0 * z, normalize=True, **FAST)  # the same directions: no gap once normalised
    assert r["distance"]["w1"]["w1"] == pytest.approx(0.0, abs=1e-6) and r["normalized"] is True
    assert np.allclose(np.linalg.norm(r.arrays["z_b"], axis=1), 1.0)


def test_low_level_pieces_on_closed_forms():
    z, y = _blobs(n=90, d=5)
    q = _rotation(5)
    assert linear_cka(z, 3.0 * z @ q + 7.0) == pytest.approx(1.0)
    assert linear_cka(z, np.ones_like(z)) is None
    assert procrustes_residual(z, z @ q)["residual"] < 1e-10
    rr = retrieval_recall(z, z)
    assert rr["x_to_y"][1] == 1.0 and rr["chance"][1] == pytest.approx(1 / 90)
    t = linear_transfer(z, y, z, y, cv=3)
    assert t["matrix_raw"][0][1] == pytest.approx(t["own"]["A"])


Z8 = np.random.default_rng(0).normal(size=(20, 8))
Y20 = np.arange(20) % 2


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(z_b=Z8[:, :4]), ValueError, r"z_b must have the same feature dimension as z_a \(8\); got 4"),
    (dict(z_a=np.where(np.eye(20, 8) > 0, np.nan, Z8)), ValueError, r"z_a contains NaN or inf values \(8 of 160"),
    (dict(z_a=Z8[:, 0]), ValueError, r"z_a must have at least 2 dimension\(s\).*reshape\(-1, 1\)"),
    (dict(z_b=Z8.reshape(20, 2, 4)), ValueError, r"z_b must have shape \(N, D\); got shape \(20, 2, 4\)"),
    (dict(z_a=Z8[:3]), ValueError, r"z_a must have at least 4 sample\(s\); got 3"),
    (dict(z_a="features.npy"), TypeError, r"z_a must be a numpy array or torch tensor"),
    (dict(y_a=Y20), ValueError, r"labels must be given for both sets or neither: got y_a but y_b=None"),
    (dict(y_a=Y20[:19], y_b=Y20), ValueError, r"y_a must have one label per row of z_a \(20\); got 19"),
    (dict(y_a=Y20 + 0.5, y_b=Y20), TypeError, r"y_a must hold integer class indices"),
    (dict(y_a=Y20 - 1, y_b=Y20), ValueError, r"y_a must hold class indices >= 0"),
    (dict(y_a=Y20.astype(str), y_b=Y20), TypeError, r"both hold class indices or both hold class names"),
    (dict(y_a=Y20, y_b=Y20, class_names=["one"]), ValueError, r"class_names must list at least 2 classes"),
    (dict(class_names=["a", "b"]), ValueError, r"class_names needs labels"),
    (dict(z_b=Z8[:10], pairs=True), ValueError, r"pairs=True needs as many rows in z_b as in z_a .* got 20 and 10"),
    (dict(pairs=np.zeros((5, 3), int)), ValueError, r"pairs must be True or an integer array of shape \(P, 2\)"),
    (dict(pairs=np.array([[0, 0], [1, 1], [2, 2], [3, 25]])), ValueError, r"pairs\[:, 1\] has indices outside 0..19"),
    (dict(pairs=np.array([[0, 0], [0, 1], [2, 2], [3, 3]])), ValueError, r"pairs\[:, 0\] repeats sample indices"),
    (dict(pairs=np.array([[0, 0], [1, 1]])), ValueError, r"pairs must hold at least 4 pairs; got 2"),
    (dict(names=("A",)), ValueError, r"names must be two names"),
    (dict(names=("A", "A")), ValueError, r"names must be two distinct non-empty names"),
    (dict(max_points=5), ValueError, r"max_points must be >= 10; got max_points=5"),
    (dict(n_permutations=-1), ValueError, r"n_permutations must be >= 0"),
    (dict(alpha=1.5), ValueError, r"alpha must be in \(0, 1\); got alpha=1.5"),
    (dict(cv=1), ValueError, r"cv must be >= 2"),
    (dict(seed=-2), ValueError, r"seed must be >= 0"),
    (dict(eps_relative=0.0), ValueError, r"eps_relative must be > 0"),
    (dict(normalize=1), TypeError, r"normalize must be true or false"),
    (dict(device="tpu"), ValueError, r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (dict(z_a=np.vstack([np.zeros((1, 8)), Z8[1:]]), normalize=True), ValueError, r"z_a has 1 all-zero rows"),
])
def test_bad_inputs_name_the_parameter(kwargs, exc, match):
    args = dict(z_a=Z8, z_b=Z8 + 1.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        explore_gap(args.pop("z_a"), args.pop("z_b"), **args)


def test_figures_from_the_result_and_from_gap_json():
    from cmkd_lab.viz import GAP_FIGURES, gap_figures, gap_overlay

    z, y = _blobs(n=120)
    r = explore_gap(z, z @ _rotation(8) + 1.0, y_a=y, y_b=y, pairs=True, **FAST)
    figs = gap_figures(r, projection="pca")
    assert [t for t, _ in figs] == [GAP_FIGURES[1]] + list(GAP_FIGURES[2:])
    for _, f in figs:
        assert f.layout.title.text and len(f.data) >= 1
    back = json.loads(json.dumps(r))
    assert [t for t, _ in gap_figures(back)] == list(GAP_FIGURES[2:])  # no features in gap.json: no overlay
    with pytest.raises(ValueError, match="the overlay needs the features"):
        gap_overlay(back)
    nolab = explore_gap(z, z + 1.0, **FAST)
    assert [t for t, _ in gap_figures(nolab, projection="none")] == [GAP_FIGURES[2]]


def _divs(html: str) -> int:
    return html.count('class="plotly-graph-div"')


@pytest.fixture()
def npz_files(tmp_path):
    z, y = _blobs(n=150)
    np.savez(tmp_path / "img.npz", features=z, labels=y, class_names=np.array(["w", "x", "y", "z"]))
    np.savez(tmp_path / "txt.npz", features=z @ _rotation(8) + 0.7, labels=y)
    np.save(tmp_path / "plain.npy", z[:, :4])
    np.savez(tmp_path / "nofeat.npz", x=z)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.save(tmp_path / "pairs.npy", np.stack([np.arange(150), np.arange(150)], 1))
    return tmp_path


def test_cli_writes_json_and_html_with_every_figure(npz_files, capsys):
    out = npz_files / "gap"
    rc = main(["gap", str(npz_files / "img.npz"), str(npz_files / "txt.npz"), "--out", str(out), "--pairs",
               str(npz_files / "pairs.npy"), "--names", "image,text", "--max-points", "120", "--permutations", "50"])
    assert rc == 0
    r = json.loads((out / "gap.json").read_text())
    assert r["names"] == ["image", "text"] and r["class_names"] == ["w", "x", "y", "z"]
    assert r["subsample"]["a"] == 120 and r["paired"]["n_pairs"] == 150
    page = (out / "gap.html").read_text()
    assert page.count("plotly.js v") == 1  # the library, inlined once: the page works offline
    assert _divs(page) == 7  # UMAP and PCA overlays, distances, plan, per class, transfer, retrieval
    for title in ("Overlay (UMAP)", "Overlay (PCA)", "Cross-modal transfer", "Paired retrieval"):
        assert title in page
    from cmkd_lab.gap_report import headline
    assert headline(r) in capsys.readouterr().out and "candidates" in headline(r)


def test_cli_without_labels_reads_npy(npz_files):
    out = npz_files / "g2"
    z = np.load(npz_files / "plain.npy")
    np.save(npz_files / "plain2.npy", z * 2.0)
    assert main(["gap", str(npz_files / "plain.npy"), str(npz_files / "plain2.npy"), "--out", str(out),
                 "--projection", "pca", "--quiet", "--permutations", "20"]) == 0
    assert _divs((out / "gap.html").read_text()) == 2  # PCA overlay and distances
    assert json.loads((out / "gap.json").read_text())["names"] == ["plain", "plain2"]


@pytest.mark.parametrize("argv,match", [
    (["gap", "{d}/img.npz", "--out", "{d}/o"], "gap needs two embedding files A B"),
    (["gap", "{d}/img.npz", "{d}/missing.npz", "--out", "{d}/o"], "B file '{d}/missing.npz' does not exist"),
    (["gap", "{d}/img.npz", "{d}/nofeat.npz", "--out", "{d}/o"], "must hold an array named 'features'"),
    (["gap", "{d}/junk.npz", "{d}/img.npz", "--out", "{d}/o"], "A file '{d}/junk.npz' cannot be read as .npz"),
    (["gap", "{d}/img.npz", "{d}/plain.npy", "--out", "{d}/o"], "labels must be in both files or in neither"),
    (["gap", "{d}/img.npz", "{d}/txt.npz", "--out", "{d}/o", "--names", "one"], "--names must be two names"),
    (["gap", "{d}/img.npz", "{d}/txt.npz", "--out", "{d}/o", "--pairs", "nope"], "--pairs must be 'rows' or"),
    (["gap", "{d}/img.npz", "{d}/txt.npz", "--out", "{d}/o", "--max-points", "3"], "max_points must be >= 10"),
    (["gap", "{d}/img.npz", "{d}/txt.npz", "--out", "{d}/o", "--projection", "tsne"], "projection must be one of"),
    (["gap", "{d}/img.npz", "{d}/txt.npz"], "--out DIR is required"),
    (["gap", "{d}/img.npz", "{d}/txt.npz", "--run", "{d}", "--out", "{d}/o"], "not both"),
    (["gap", "--run", "{d}/none", "--out", "{d}/o"], "--run must be a run directory holding a result.json"),
])
def test_cli_bad_input_exits_2_with_one_line(npz_files, argv, match, capsys):
    d = str(npz_files)
    assert main([a.format(d=d) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m cmkd_lab gap: error: ") and match.format(d=d) in err[0], err


def test_cli_dimension_mismatch(npz_files, capsys):
    z, y = _blobs(n=150)
    np.savez(npz_files / "narrow.npz", features=z[:, :5], labels=y)
    assert main(["gap", str(npz_files / "img.npz"), str(npz_files / "narrow.npz"), "--out", str(npz_files / "o")]) == 2
    # the command line names the files, not explore_gap's parameters (z_a, z_b)
    assert (f"B file '{npz_files / 'narrow.npz'}' (its features) must have the same feature dimension as A file "
            f"'{npz_files / 'img.npz'}' (its features) (8); got 5") in capsys.readouterr().err


def test_gap_of_a_real_run_before_and_after(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--task", "synthetic", "--fast", "--epochs", "2", "--teacher-epochs", "2", "--method", "fa",
                 "--out", str(run), "--quiet"]) == 0
    out = tmp_path / "gap"
    assert main(["gap", "--run", str(run), "--out", str(out), "--projection", "pca", "--permutations", "50"]) == 0
    g = json.loads((out / "gap.json").read_text())
    assert g["epochs"] == [0, 2] and g["run"]["method"] == "fa"
    assert g["before"]["names"] == ["teacher", "student"]
    rows = {r["quantity"]: r for r in g["table"]}
    assert {"MMD²", "W1", "plan purity", "transfer teacher→student"} <= set(rows)
    assert rows["MMD²"]["before"] != rows["MMD²"]["after"]  # the student's features moved
    page = (out / "gap.html").read_text()
    assert page.count("plotly.js v") == 1 and _divs(page) == 2 * 5  # before and after: PCA + 4 label figures
    assert "epoch 0" in capsys.readouterr().out
    result = json.loads((run / "result.json").read_text())
    res = explore_run_gap(result, n_permutations=0)
    assert res["before"]["distance"]["mmd"]["p_value"] is None
    assert "without a test (n_permutations = 0)" in res["before"]["classes"]["per_class_mmd"]["reading"]
    with pytest.raises(ValueError, match="explore_run_gap sets names from the run"):
        explore_run_gap(result, names=("a", "b"))
    with pytest.raises(ValueError, match="feature snapshots at two epochs"):
        explore_run_gap({"diagnostics": {"snapshots": []}})


def test_png_export_says_why_without_kaleido(npz_files, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "kaleido", None)  # makes `import kaleido` fail
    assert main(["gap", str(npz_files / "img.npz"), str(npz_files / "txt.npz"), "--out", str(npz_files / "p"),
                 "--projection", "none", "--permutations", "20", "--png"]) == 0
    assert "PNG export skipped: kaleido is not installed" in capsys.readouterr().err  # a warning, even with --quiet


def test_notebook_helpers():
    from cmkd_lab.widgets import gap as G
    from cmkd_lab.widgets.settings import settings

    emb = G.demo_embeddings()
    assert emb["z_a"].shape == emb["z_b"].shape == (1797, 16) and emb["y"].shape == (1797,)
    lab = settings(fast=True)
    r, figs = G.explore(emb["z_a"][:300], emb["z_b"][:300], y_a=emb["y"][:300], y_b=emb["y"][:300], pairs=True,
                        lab=lab, n_permutations=20, cv=2)
    assert r["settings"]["max_points"] == 400 and "Overlay (PCA)" in figs and "Overlay (UMAP)" not in figs
    t = G.gap_table({"digits": r})
    assert list(t.index) == ["digits"] and t.loc["digits", "A→B"] == r["transfer"]["transfer"]["A→B"]["raw"]
    assert "**" in G.readings(r).data
    with pytest.raises(ValueError, match="split must be one of"):
        G.task_features("synthetic", split="dev", lab=lab)
    with pytest.raises(TypeError, match="result must be what explore_gap returns"):
        G.readings({"a": 1})
