"""Database-level guards: issued invoices and their lines, usage rows and credit entries never change.

save() refuses too, but QuerySet.update(), raw SQL and admin bulk actions bypass save(): the trigger
is what makes it true. TRUNCATE (test teardown) does not fire row triggers.
"""

from django.db import migrations

POSTGRES = [
    """
    CREATE OR REPLACE FUNCTION billing_invoice_guard() RETURNS trigger AS $$
    BEGIN
        IF OLD.status = 'issued' THEN
            RAISE EXCEPTION 'billing: invoice % is issued and immutable', OLD.number USING ERRCODE = 'raise_exception';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    """,
    "CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON billing_invoice "
    "FOR EACH ROW EXECUTE FUNCTION billing_invoice_guard();",
    """
    CREATE OR REPLACE FUNCTION billing_invoiceline_guard() RETURNS trigger AS $$
    DECLARE inv_id bigint;
    BEGIN
        IF TG_OP = 'INSERT' THEN inv_id := NEW.invoice_id; ELSE inv_id := OLD.invoice_id; END IF;
        IF EXISTS (SELECT 1 FROM billing_invoice WHERE id = inv_id AND status = 'issued')
           OR (TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM billing_invoice WHERE id = NEW.invoice_id AND status = 'issued')) THEN
            RAISE EXCEPTION 'billing: lines of issued invoice % are immutable', inv_id USING ERRCODE = 'raise_exception';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    """,
    "CREATE TRIGGER billing_invoiceline_immutable BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline "
    "FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_guard();",
    """
    CREATE OR REPLACE FUNCTION billing_append_only_guard() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'billing: % is append-only', TG_TABLE_NAME USING ERRCODE = 'raise_exception';
    END $$ LANGUAGE plpgsql;
    """,
    "CREATE TRIGGER billing_usagerecord_append_only BEFORE UPDATE ON billing_usagerecord "
    "FOR EACH ROW EXECUTE FUNCTION billing_append_only_guard();",
    "CREATE TRIGGER billing_creditentry_append_only BEFORE UPDATE ON billing_creditentry "
    "FOR EACH ROW EXECUTE FUNCTION billing_append_only_guard();",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;",
    "DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;",
    "DROP TRIGGER IF EXISTS billing_usagerecord_append_only ON billing_usagerecord;",
    "DROP TRIGGER IF EXISTS billing_creditentry_append_only ON billing_creditentry;",
    "DROP FUNCTION IF EXISTS billing_invoice_guard();",
    "DROP FUNCTION IF EXISTS billing_invoiceline_guard();",
    "DROP FUNCTION IF EXISTS billing_append_only_guard();",
]

SQLITE = [
    "CREATE TRIGGER billing_invoice_immutable_u BEFORE UPDATE ON billing_invoice WHEN OLD.status = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'billing: issued invoices are immutable'); END;",
    "CREATE TRIGGER billing_invoice_immutable_d BEFORE DELETE ON billing_invoice WHEN OLD.status = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'billing: issued invoices are immutable'); END;",
    "CREATE TRIGGER billing_invoiceline_immutable_i BEFORE INSERT ON billing_invoiceline "
    "WHEN (SELECT status FROM billing_invoice WHERE id = NEW.invoice_id) = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'billing: lines of issued invoices are immutable'); END;",
    "CREATE TRIGGER billing_invoiceline_immutable_u BEFORE UPDATE ON billing_invoiceline "
    "WHEN (SELECT status FROM billing_invoice WHERE id = OLD.invoice_id) = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'billing: lines of issued invoices are immutable'); END;",
    "CREATE TRIGGER billing_invoiceline_immutable_d BEFORE DELETE ON billing_invoiceline "
    "WHEN (SELECT status FROM billing_invoice WHERE id = OLD.invoice_id) = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'billing: lines of issued invoices are immutable'); END;",
    "CREATE TRIGGER billing_usagerecord_append_only BEFORE UPDATE ON billing_usagerecord "
    "BEGIN SELECT RAISE(ABORT, 'billing: usage is append-only'); END;",
    "CREATE TRIGGER billing_creditentry_append_only BEFORE UPDATE ON billing_creditentry "
    "BEGIN SELECT RAISE(ABORT, 'billing: credit entries are append-only'); END;",
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {name};"
    for name in (
        "billing_invoice_immutable_u",
        "billing_invoice_immutable_d",
        "billing_invoiceline_immutable_i",
        "billing_invoiceline_immutable_u",
        "billing_invoiceline_immutable_d",
        "billing_usagerecord_append_only",
        "billing_creditentry_append_only",
    )
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_price_book_credits_invoices")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}),
        )
    ]
