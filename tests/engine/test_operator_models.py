"""Operator-supplied recognisers: a model file (TOML) and its ONNX file in ``<home>/models``
are listed, used for new galleries when named the default, and enrol + search work end to end
with them through the real services. A bad model file gets one clear error each."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from probity.config import EngineSettings, Settings
from probity.engine.images import read_image_file
from probity.engine.onnx_engine import OnnxEngine
from probity.engine.registry import build_engine_set
from probity.errors import IntegrityError, InvalidInput
from probity.services.container import build_services, initialise
from tests.engine.tiny_model import install_tiny_model

TINY_KEY = "tiny-projection@test-1"
ACTOR = "curator"
PROVENANCE = {
    "source": "whitehouse.gov portrait",
    "lawful_basis": "public_task",
    "collected_at": (date.today() - timedelta(days=30)).isoformat(),  # tests must not age
    "jurisdiction": "US",
    "collected_by": "curator",
}


def test_an_operator_model_file_is_listed_with_its_card(tmp_path: Path) -> None:
    toml = install_tiny_model(tmp_path / "models")
    engines = build_engine_set(EngineSettings(), home_models=tmp_path / "models")
    assert TINY_KEY in list(engines.keys())
    assert engines.default.model.name == "sface-int8"  # adding a model changes no default
    card = next(c for c in engines.cards() if c.model.key == TINY_KEY)
    assert card.origin == f"operator: {toml}"
    assert card.model.dimension == 64 and card.licence == "CC0 (made in the test)"
    assert engines.resolve("tiny-projection").model.key == TINY_KEY
    table = engines.table(card.model)
    assert [(p.fmr, p.distance) for p in table.points] == [(1e-3, 0.5)]
    assert table.distance == "euclidean_unit" and "tiny.toml" in table.source


def test_model_dirs_setting_is_read_too(tmp_path: Path) -> None:
    install_tiny_model(tmp_path / "elsewhere")
    engines = build_engine_set(EngineSettings(model_dirs=[tmp_path / "elsewhere"]))
    assert engines.has(TINY_KEY)


def test_the_operator_engine_embeds_a_real_face(tmp_path: Path, data_dir: Path) -> None:
    install_tiny_model(tmp_path / "models")
    engine = build_engine_set(EngineSettings(), home_models=tmp_path / "models").resolve(
        "tiny-projection"
    )
    assert isinstance(engine, OnnxEngine)
    image = read_image_file(data_dir / "obama.jpg", max_bytes=10**8, max_pixels=10**8)
    (face,) = engine.analyse(image)
    assert face.descriptor.shape == (64,)
    assert abs(float(np.linalg.norm(face.descriptor)) - 1.0) < 1e-5
    (again,) = engine.analyse(image)
    assert again.descriptor.tobytes() == face.descriptor.tobytes()


def test_enrol_and_search_end_to_end_on_an_operator_model(tmp_path: Path, data_dir: Path) -> None:
    """Named the default, the operator model is the model of a new gallery; enrolment and
    search run it through the real services (SQLite, FAISS index, sealed blobs)."""
    home = tmp_path / "home"
    install_tiny_model(home / "models")
    settings = Settings(home=home, engine=EngineSettings(default_model="tiny-projection"))
    initialise(settings, actor=ACTOR)
    svc = build_services(settings)
    try:
        gallery = svc.galleries.create(
            actor=ACTOR,
            name="portraits",
            inclusion_policy="official portraits",
            retention_days=3650,
            jurisdictions=["US"],
        )
        assert gallery.model.key == TINY_KEY
        for subject, photo in (("OBAMA", "obama.jpg"), ("BIDEN", "biden.jpg")):
            svc.enrolment.enrol(
                actor=ACTOR,
                gallery="portraits",
                subject=subject,
                image=(data_dir / photo).read_bytes(),
                provenance=PROVENANCE,
            )
        svc.cases.open(
            actor=ACTOR,
            reference="C-TINY",
            offence="fraud",
            justification="test of an operator model",
            authorisation="AUTH-T",
        )
        result = svc.search.search(
            actor=ACTOR,
            case_reference="C-TINY",
            probe=(data_dir / "obama.jpg").read_bytes(),
            threshold_off=True,
        )
    finally:
        svc.close()
    assert result.model_key == TINY_KEY
    (face,) = result.faces
    assert [c.subject_reference for c in face.candidates] == ["OBAMA", "BIDEN"]
    assert face.candidates[0].distance < 1e-5  # the enrolled photo itself


# -- bad model files: one clear error each -----------------------------------------------------


def test_a_missing_field_is_named_with_the_file(tmp_path: Path) -> None:
    toml = install_tiny_model(tmp_path / "models", drop="sha256")
    with pytest.raises(InvalidInput) as info:
        build_engine_set(EngineSettings(), home_models=tmp_path / "models")
    assert str(toml) in info.value.message and "missing field 'sha256'" in info.value.message


def test_a_missing_dimension_is_named(tmp_path: Path) -> None:
    install_tiny_model(tmp_path / "models", drop="dimension")
    with pytest.raises(InvalidInput, match="missing field 'dimension'"):
        build_engine_set(EngineSettings(), home_models=tmp_path / "models")


def test_an_output_of_another_dimension_is_refused_at_first_use(
    tmp_path: Path, data_dir: Path
) -> None:
    install_tiny_model(tmp_path / "models", dimension=64, declared_dimension=128)
    engine = build_engine_set(EngineSettings(), home_models=tmp_path / "models").get(TINY_KEY)
    image = read_image_file(data_dir / "obama.jpg", max_bytes=10**8, max_pixels=10**8)
    with pytest.raises(IntegrityError, match="gave 64-d output; its model file says 128"):
        engine.analyse(image)


def test_a_wrong_sha256_is_refused_naming_the_file_and_both_digests(
    tmp_path: Path, data_dir: Path
) -> None:
    toml = install_tiny_model(tmp_path / "models", sha256="0" * 64)
    engine = build_engine_set(EngineSettings(), home_models=tmp_path / "models").get(TINY_KEY)
    assert isinstance(engine, OnnxEngine)
    with pytest.raises(IntegrityError) as info:
        engine.recogniser.load()
    message = info.value.message
    assert str(toml.parent / "tiny.onnx") in message
    assert "0" * 64 in message
    assert (toml.parent / "tiny.onnx").exists()
    import hashlib

    assert hashlib.sha256((toml.parent / "tiny.onnx").read_bytes()).hexdigest() in message


def test_an_operator_file_reusing_the_bundled_key_is_refused(tmp_path: Path) -> None:
    install_tiny_model(tmp_path / "models", name="sface-int8", version="opencv_zoo-2021dec-int8bq")
    with pytest.raises(InvalidInput, match="already installed"):
        build_engine_set(EngineSettings(), home_models=tmp_path / "models")


def test_an_unknown_default_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="names no single installed model"):
        build_engine_set(EngineSettings(default_model="arcface-r100"))


def test_a_model_without_a_models_folder_is_fine(tmp_path: Path) -> None:
    engines = build_engine_set(EngineSettings(), home_models=tmp_path / "absent")
    assert sorted(e.model.name for e in engines) == ["dlib-resnet-v1", "sface-int8"]


def test_a_copy_of_sface_is_loaded_like_an_operator_model(tmp_path: Path) -> None:
    """The bundled file, copied and described by an operator TOML, loads (the control for the
    altered-copy test in test_model_integrity.py)."""
    from tests.engine.test_model_integrity import sface_copy_model_file

    sface_copy_model_file(tmp_path / "models", flip_at=None)
    engine = build_engine_set(EngineSettings(), home_models=tmp_path / "models").get(
        "sface-copy@local-1"
    )
    assert isinstance(engine, OnnxEngine)
    engine.recogniser.load()
