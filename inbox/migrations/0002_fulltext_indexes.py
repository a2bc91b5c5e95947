"""Full-text indexes for the inbox search (PostgreSQL only; SQLite searches by substring).

The expressions match inbox.selectors_ui's SearchVector(..., config="simple") exactly, so the planner
uses them. Kept out of Meta.indexes because they cannot exist on SQLite, the embedded default.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEXES = [
    ("message", GinIndex(SearchVector("text", config="simple"), name="message_text_fts")),
    ("contact", GinIndex(SearchVector("name", config="simple"), name="contact_name_fts")),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in INDEXES:
        schema_editor.add_index(apps.get_model("inbox", model_name), index)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in INDEXES:
        schema_editor.remove_index(apps.get_model("inbox", model_name), index)


class Migration(migrations.Migration):
    dependencies = [("inbox", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
