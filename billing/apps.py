from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from .models import Plan
        from .services import plan_default_forget

        post_save.connect(plan_default_forget, sender=Plan, dispatch_uid="billing.plan_default_forget.save")
        post_delete.connect(plan_default_forget, sender=Plan, dispatch_uid="billing.plan_default_forget.delete")
