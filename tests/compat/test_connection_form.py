"""The connection form shows every DataWorks field on the installed Airflow, from one definition.

Airflow 3.x serves the form's fields to its UI from ``HookMetaService`` (3.0/3.1 through the
hook's wtforms fields, 3.2+ from ``conn-fields``); Airflow 2.11's FAB form is built from the
providers manager's ``connection_form_widgets``. Each test asks Airflow itself.
"""

from __future__ import annotations

import pytest

from airflow_provider_dataworks.connection_form import FIELDS, HIDDEN_FIELDS, RELABELING, conn_fields


def _dataworks_meta():
    # computed once per process, as the API server does (@cache): on 3.1 a second computation
    # trips over the wtforms stand-ins the first one left in sys.modules
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "dataworks"]
    return meta


@pytest.mark.min_airflow("3.0")
def test_airflow_3_ui_metadata_has_every_field_with_its_label_and_type():
    meta = _dataworks_meta()

    assert meta.extra_fields is not None, "Airflow found no DataWorks extra fields"
    assert list(meta.extra_fields) == [field.name for field in FIELDS]
    expected = conn_fields()
    for name, shown in meta.extra_fields.items():
        schema = shown["schema"]
        assert schema["title"] == expected[name]["label"]
        assert shown["description"] == expected[name]["description"]
        json_type = expected[name]["schema"]["type"][0]
        # the 3.0/3.1 stand-ins know string, integer and password fields only: numbers are strings there
        assert schema["type"][0] in ({json_type} if json_type != "number" else {"number", "string"}), name
        if "enum" in expected[name]["schema"]:
            assert schema["enum"] == expected[name]["schema"]["enum"], name
    assert meta.extra_fields["security_token"]["schema"]["format"] == "password"


@pytest.mark.min_airflow("3.0")
def test_airflow_3_ui_metadata_hides_and_relabels_the_standard_fields():
    standard = _dataworks_meta().standard_fields

    assert standard is not None
    for name in HIDDEN_FIELDS:
        field = getattr(standard, "url_schema" if name == "schema" else name)
        assert field is not None and field.hidden, name
    assert (standard.login.title, standard.password.title) == (RELABELING["login"], RELABELING["password"])


def test_providers_manager_has_the_form_of_the_installed_version():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    behaviour = manager.field_behaviours["dataworks"]

    assert {f"extra__dataworks__{field.name}" for field in FIELDS} <= set(widgets)
    assert sorted(behaviour["hidden_fields"]) == sorted(HIDDEN_FIELDS)
    assert behaviour["relabeling"] == RELABELING
