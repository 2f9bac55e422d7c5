"""The harness's own runs load its pytest plugin through the `l506` entry point.

scripts/setup installs this checkout (editable), so pytest loads hil.fixtures.plugin by
itself; naming the entry point here registers nothing twice (pytest skips a plugin already
registered under that name) and still loads it when PYTEST_DISABLE_PLUGIN_AUTOLOAD is set.
"""

pytest_plugins = ["l506"]
