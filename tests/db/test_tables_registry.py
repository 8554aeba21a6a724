"""Tables are registered explicitly: ``db.TABLE_MODULES`` lists every ``tables.py`` and nothing else."""

from __future__ import annotations

from pathlib import Path

import nlp_service
from nlp_service.db import TABLE_MODULES, Base, import_all_tables


def test_every_tables_module_is_listed() -> None:
    root = Path(nlp_service.__file__).resolve().parent
    on_disk = {
        ".".join(("nlp_service", *path.relative_to(root).with_suffix("").parts))
        for path in root.rglob("tables.py")
    }
    assert sorted(TABLE_MODULES) == sorted(on_disk)


def test_import_all_tables_maps_a_table_from_each_listed_module() -> None:
    import_all_tables()
    mapped = {mapper.class_.__module__ for mapper in Base.registry.mappers}
    assert mapped == set(TABLE_MODULES)
