"""Minimal settings for the bare view: same database (and pool under ASGI) as the product, no apps,
no middleware, one URL."""

from alexia.env import env

SECRET_KEY = "bench-baseline"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.baseline.app"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
DATABASES = {"default": env.db_url_config(env("DATABASE_URL"))}
if env.bool("DATABASE_POOL", default=False):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
BASELINE_APP_SECRET = env("BASELINE_APP_SECRET", default="bench-app-secret")
